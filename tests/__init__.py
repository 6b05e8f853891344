"""Tests for ECHO (a package so test modules can share helpers from conftest)."""

"""Readers (and two writers) of recorded HTTP traffic: one module per recording format.

A *recording* is a file of HTTP exchanges captured by some tool. Each reader
here turns one container format into :class:`~echo_archive.model.Exchange`
objects, so the replay transport, ``echoctl import`` and the tests share one
reader per format. The format is detected from the file's content, never from
its name (:func:`sniff_format`).

Formats (``Recording.format``) and the documents each reader follows:

``betamax``
    betamax / VCR JSON cassettes (betamax's ``cassette`` serializer; also the
    JSON shape of Ruby VCR and vcrpy): ``{"interactions" | "http_interactions":
    [{"request", "response", "recorded_at"}]}``. Covers github3.py's
    ``status_code`` variant, plain-string header values and ``base64_string``
    bodies.
``vcrpy-json``
    vcrpy JSON cassettes (vcrpy's ``jsonserializer``: ``{"interactions": [...],
    "version": 1}``, no ``recorded_with``; PRAW and prawcore record with it),
    read by the same reader as ``betamax``.
``ruby-vcr-json``
    Ruby VCR JSON cassettes (VCR's ``:json`` serializer: ``{"http_interactions":
    [...], "recorded_with": "VCR 6.0.0"}``), read by the same reader.
``pygithub``
    PyGithub's replay data files (``tests/ReplayData/*.txt``): 10-line records
    separated by a blank line.
``ruby-vcr``
    Ruby VCR YAML cassettes (VCR's ``:yaml`` serializer, Psych): ``!binary``
    scalars are base64.
``vcrpy``
    vcrpy YAML cassettes (vcrpy's ``yamlserializer``); ``!!binary`` is the YAML
    1.1 binary type (base64).
``exvcr``
    Elixir ExVCR JSON cassettes: a top-level list of ``{"request", "response"}``.
``har``
    HAR 1.2 (W3C Web Performance WG draft "HTTP Archive (HAR) format",
    http://www.softwareishard.com/blog/har-12-spec/).
``warc``
    WARC 1.0 / 1.1 (ISO 28500:2009, ISO 28500:2017), plain or record-gzipped,
    read with ``warcio``; ``response`` records paired with their ``request``
    records.

Bodies are content-decoded here (RFC 9110 §8.4; HAR bodies are decoded by
definition already). The gzip magic ``1f 8b`` is sniffed rather than trusting
``Content-Encoding`` alone, because recorders often store the decoded body and
keep the stale header (vcrpy 2024 files), and sometimes store the gzip bytes
(github3.py, vcrpy 2022 files). Headers are kept exactly as recorded,
``Content-Encoding`` included.

Leniency (the GH Archive advice): an interaction that cannot be read is skipped
and described in ``Recording.problems``; only a file that is not a recording
at all, or whose every interaction is malformed, raises
:class:`~echo_archive.errors.RecordingError`.

Modules: :mod:`.betamax` (the JSON VCR family), :mod:`.vcr_yaml`,
:mod:`.exvcr`, :mod:`.pygithub`, :mod:`.har` (reader and writer),
:mod:`.warc` (reader and writer), :mod:`.detect` (format detection and the
public readers), :mod:`._common` (what they share). Every public name is
importable from this package, as it was from the single module it replaces.
"""

from __future__ import annotations

from echo_archive.harvest.recordings._common import FORMATS, Recording, _RecordingLoader
from echo_archive.harvest.recordings.detect import (
    DetectedRecording,
    detect_recording,
    iter_exchanges,
    read_betamax,
    read_exvcr,
    read_har,
    read_pygithub,
    read_recording,
    read_ruby_vcr,
    read_vcrpy,
    read_warc,
    sniff_format,
)
from echo_archive.harvest.recordings.har import write_har
from echo_archive.harvest.recordings.warc import write_warc

__all__ = [
    "FORMATS",
    "DetectedRecording",
    "Recording",
    "_RecordingLoader",
    "detect_recording",
    "iter_exchanges",
    "read_betamax",
    "read_exvcr",
    "read_har",
    "read_pygithub",
    "read_recording",
    "read_ruby_vcr",
    "read_vcrpy",
    "read_warc",
    "sniff_format",
    "write_har",
    "write_warc",
]

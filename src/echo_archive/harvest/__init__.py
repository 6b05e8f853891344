"""Harvest: the fetch engine and the readers of recorded traffic.

recording
    A file of HTTP exchanges recorded by some tool: betamax/VCR JSON, vcrpy
    YAML, Ruby VCR YAML, ExVCR JSON, PyGithub replay text, HAR, WARC.
    :mod:`.recordings` reads each into :class:`~echo_archive.model.Exchange`
    objects, so the replay transport, ``echoctl import`` and the tests share
    one reader per format.
"""

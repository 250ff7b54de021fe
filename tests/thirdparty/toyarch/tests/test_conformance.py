"""The porter's whole conformance test: guestdbg's kit run against the toy arch."""

from guestdbg.testing import ArchConformance


class TestToyConformance(ArchConformance):
    arch = "toy"

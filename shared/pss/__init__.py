"""The WT PSS UDP protocol: parsing, clock values and a match simulator."""

from shared.pss.parser import MAX_DATAGRAM_BYTES, Category, PssEvent, parse_datagram, parse_line

__all__ = ["MAX_DATAGRAM_BYTES", "Category", "PssEvent", "parse_datagram", "parse_line"]

"""guestdbg-toyarch: a made-up arch plugin, built only on guestdbg's public modules."""

"""Command-line interface (thin shell over the library)."""

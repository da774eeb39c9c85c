"""The book's NumPy classes, written from docs/book.md: the oracle every purenn function is
checked against."""

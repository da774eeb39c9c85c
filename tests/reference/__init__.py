"""The book's NumPy classes, written from BOOK.md: the oracle every purenn function is
checked against."""

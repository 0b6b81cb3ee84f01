"""The contract between slave and master: PSS protocol, wire messages, match state, chapters.

Pure logic only: nothing in this package opens a socket, a file or a database.
"""

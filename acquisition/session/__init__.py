"""Listening sessions: the protocol file (``protocol``), the runner's state machine
(``runner``) and the LSL marker outlet (``markers``). The top of the acquisition layer:
it drives a source and writes through the store.
"""

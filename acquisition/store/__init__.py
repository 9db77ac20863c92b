"""The session store: the SQLite file (``sqlite``), the recorders that copy a ring buffer
into it (``recorder``) and the exports that read it (``export``). Reads a source's ring
buffer; never imports a source or the session runner.
"""

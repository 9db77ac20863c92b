"""Signal sources: one :class:`~acquisition.sources.base.BaseSource` per kind of device.

``base`` (the interface, statuses, gap detection), ``simulated`` (the simulated EPOC+),
``lsl`` (EmotivPRO and other LSL streams), ``brainflow`` (any BrainFlow board),
``replay`` (recorded files and stored sessions), ``spec`` (the ``--source`` strings) and
``resample`` (the one resampler, live and offline). A source fills its
:class:`~acquisition.ringbuffer.RingBuffer`; it never imports the session or the store
writers.
"""

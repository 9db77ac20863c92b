-- The session store's schema 1 (Duygu's first landing), kept to test the upgrade to schema 2.
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS participants (
    id TEXT PRIMARY KEY,
    age INTEGER,
    sex TEXT,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    participant TEXT NOT NULL REFERENCES participants(id),
    protocol TEXT NOT NULL,
    protocol_name TEXT NOT NULL,
    source TEXT NOT NULL,
    device TEXT NOT NULL,
    sfreq_hz REAL NOT NULL,
    channels TEXT NOT NULL,
    start TEXT NOT NULL,
    end TEXT,
    updated TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'aborted', 'interrupted')),
    owner_pid INTEGER NOT NULL,
    owner_host TEXT NOT NULL,
    owner_marker TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    stimulus_id TEXT NOT NULL,
    intended TEXT,
    onset_t REAL NOT NULL,
    offset_t REAL NOT NULL,
    onset_index INTEGER,
    offset_index INTEGER,
    label TEXT,
    valence INTEGER,
    arousal INTEGER
);
CREATE INDEX IF NOT EXISTS trials_session ON trials(session_id);
CREATE TABLE IF NOT EXISTS markers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    t REAL NOT NULL,
    sample_index INTEGER,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS markers_session ON markers(session_id);
CREATE TABLE IF NOT EXISTS eeg_chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    first_index INTEGER NOT NULL,
    n_samples INTEGER NOT NULL,
    first_t REAL NOT NULL,
    last_t REAL NOT NULL,
    data BLOB NOT NULL,
    timestamps BLOB NOT NULL,
    UNIQUE (session_id, first_index)
);

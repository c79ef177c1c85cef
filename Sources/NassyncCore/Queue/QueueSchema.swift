import GRDB

/// The queue's schema. Migrations are never edited once released: a change is a new one.
enum QueueSchema {
    /// Marks the file as a nassync queue ("nass"), so another program's database is never taken for one.
    static let applicationID: Int32 = 0x6E61_7373

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: jobs, files, verify results, events") { db in
            try db.execute(sql: "PRAGMA application_id = \(applicationID)")
            try db.execute(
                sql: """
                    CREATE TABLE jobs (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        run_path TEXT NOT NULL UNIQUE,
                        instrument TEXT NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'awaiting_verify', 'verified',
                                                             'cleanup_eligible', 'cleaned', 'failed')),
                        priority INTEGER NOT NULL DEFAULT 0,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        last_attempt_at DATETIME,
                        next_attempt_at DATETIME,
                        last_error TEXT,
                        verify_passes INTEGER NOT NULL DEFAULT 0,
                        first_verified_at DATETIME,
                        verified_at DATETIME,
                        enqueued_at DATETIME NOT NULL,
                        nas_path TEXT,
                        claimed_by TEXT,
                        claimed_at DATETIME,
                        heartbeat_at DATETIME,
                        files INTEGER NOT NULL DEFAULT 0,
                        bytes INTEGER NOT NULL DEFAULT 0,
                        updated_at DATETIME NOT NULL
                    );
                    CREATE INDEX jobs_due ON jobs (state, priority DESC, next_attempt_at, enqueued_at, id);

                    -- The manifest: one row per file, directory or symlink of a run.
                    CREATE TABLE files (
                        job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
                        path TEXT NOT NULL,
                        kind TEXT NOT NULL CHECK (kind IN ('file', 'directory', 'symlink')),
                        size INTEGER NOT NULL DEFAULT 0,
                        mtime_ns INTEGER,
                        inode INTEGER,
                        link_target TEXT,
                        sha256 TEXT,
                        hashed_at DATETIME,
                        transfer_state TEXT NOT NULL DEFAULT 'pending'
                            CHECK (transfer_state IN ('pending', 'partial', 'sent', 'resend')),
                        sent_bytes INTEGER NOT NULL DEFAULT 0,
                        PRIMARY KEY (job_id, path)
                    ) WITHOUT ROWID;

                    -- What each verify pass found, file by file.
                    CREATE TABLE verify_results (
                        job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
                        pass INTEGER NOT NULL,
                        path TEXT NOT NULL,
                        outcome TEXT NOT NULL CHECK (outcome IN ('match', 'mismatch', 'missing')),
                        found_sha256 TEXT,
                        method TEXT NOT NULL,
                        checked_at DATETIME NOT NULL,
                        PRIMARY KEY (job_id, pass, path)
                    ) WITHOUT ROWID;

                    -- The audit trail. Rows outlive pruned jobs and are never changed.
                    CREATE TABLE events (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        job_id INTEGER NOT NULL,
                        at DATETIME NOT NULL,
                        from_state TEXT,
                        to_state TEXT NOT NULL,
                        reason TEXT NOT NULL,
                        detail TEXT
                    );
                    CREATE INDEX events_job ON events (job_id, id);
                    CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
                        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
                    CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
                        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
                    """)
        }
        migrator.registerMigration("v2: run observations for the watcher") { db in
            try db.execute(
                sql: """
                    -- What the watcher last saw of each run directory. The quiet clock (changed_at) and the
                    -- signature survive a restart; job_signature is the signature the job's proof is about.
                    CREATE TABLE runs (
                        run_path TEXT PRIMARY KEY,
                        instrument TEXT NOT NULL,
                        signature TEXT NOT NULL,
                        files INTEGER NOT NULL,
                        bytes INTEGER NOT NULL,
                        marker_found INTEGER NOT NULL DEFAULT 0,
                        first_seen_at DATETIME NOT NULL,
                        changed_at DATETIME NOT NULL,
                        seen_at DATETIME NOT NULL,
                        job_signature TEXT
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v3: events by reason, for metrics") { db in
            try db.execute(sql: "CREATE INDEX events_reason ON events (reason, at)")
        }
        // GRDB runs a migration with foreign keys off (checked at the end), so rebuilding `jobs`
        // this way leaves the rows of `files` and `verify_results` that point at it in place.
        migrator.registerMigration("v4: run identity; a run folder may hold a new run once cleaned") { db in
            try db.execute(
                sql: """
                    CREATE TABLE jobs_v4 (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        run_path TEXT NOT NULL,
                        instrument TEXT NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'awaiting_verify', 'verified',
                                                             'cleanup_eligible', 'cleaned', 'failed')),
                        priority INTEGER NOT NULL DEFAULT 0,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        last_attempt_at DATETIME,
                        next_attempt_at DATETIME,
                        last_error TEXT,
                        verify_passes INTEGER NOT NULL DEFAULT 0,
                        first_verified_at DATETIME,
                        verified_at DATETIME,
                        enqueued_at DATETIME NOT NULL,
                        nas_path TEXT,
                        claimed_by TEXT,
                        claimed_at DATETIME,
                        heartbeat_at DATETIME,
                        files INTEGER NOT NULL DEFAULT 0,
                        bytes INTEGER NOT NULL DEFAULT 0,
                        updated_at DATETIME NOT NULL,
                        -- Written into .nassync/identity of the run's NAS folder: which run the folder holds.
                        run_id TEXT
                    );
                    INSERT INTO jobs_v4 (id, run_path, instrument, state, priority, attempts, last_attempt_at,
                        next_attempt_at, last_error, verify_passes, first_verified_at, verified_at, enqueued_at,
                        nas_path, claimed_by, claimed_at, heartbeat_at, files, bytes, updated_at)
                    SELECT id, run_path, instrument, state, priority, attempts, last_attempt_at, next_attempt_at,
                        last_error, verify_passes, first_verified_at, verified_at, enqueued_at, nas_path, claimed_by,
                        claimed_at, heartbeat_at, files, bytes, updated_at FROM jobs;
                    DROP TABLE jobs;
                    ALTER TABLE jobs_v4 RENAME TO jobs;
                    CREATE INDEX jobs_due ON jobs (state, priority DESC, next_attempt_at, enqueued_at, id);
                    -- One job per run folder at a time; a cleaned run's folder that fills again is a new run.
                    CREATE UNIQUE INDEX jobs_open_run ON jobs (run_path) WHERE state <> 'cleaned';
                    CREATE INDEX jobs_run ON jobs (run_path, id);
                    -- Dropping the old table dropped its id counter: ids of pruned jobs live on in
                    -- events, and must never be handed out again.
                    INSERT INTO sqlite_sequence (name, seq) SELECT 'jobs', 0
                        WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'jobs');
                    UPDATE sqlite_sequence SET seq = max(seq, (SELECT coalesce(max(job_id), 0) FROM events))
                        WHERE name = 'jobs';
                    """)
        }
        migrator.registerMigration("v5: ctime and device in the manifest; files a cleanup deleted") { db in
            try db.execute(sql: "ALTER TABLE files ADD COLUMN ctime_ns INTEGER")
            try db.execute(sql: "ALTER TABLE files ADD COLUMN device INTEGER")
            // Set when a cleanup that stopped halfway had deleted the file: it stays in the manifest
            // (its NAS copy is proven), though the run no longer has it.
            try db.execute(sql: "ALTER TABLE files ADD COLUMN deleted_at DATETIME")
        }
        migrator.registerMigration("v6: manifests and verify passes written in pages") { db in
            // Which scan of the run last saw the row: a scan writes its rows in batches and, at
            // its end, drops the rows it did not see (a run of a million files is never held
            // in memory at once).
            try db.execute(sql: "ALTER TABLE files ADD COLUMN scan INTEGER NOT NULL DEFAULT 0")
            // What the verify pass under way has found so far, page by page; judged against the
            // manifest and moved to verify_results in the transaction that records the pass.
            try db.execute(
                sql: """
                    CREATE TABLE verify_staging (
                        job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
                        path TEXT NOT NULL,
                        found_sha256 TEXT,
                        PRIMARY KEY (job_id, path)
                    ) WITHOUT ROWID
                    """)
        }
        migrator.registerMigration("v7: progress of the work in flight") { db in
            // Rewritten every few seconds by a transfer or a verify pass under way, for
            // `nassync status`; removed when that work ends.
            try db.execute(
                sql: """
                    CREATE TABLE progress (
                        job_id INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
                        stage TEXT NOT NULL CHECK (stage IN ('transfer', 'verify')),
                        pass INTEGER,
                        files_done INTEGER NOT NULL,
                        files_total INTEGER NOT NULL,
                        bytes_done INTEGER NOT NULL,
                        bytes_total INTEGER NOT NULL,
                        rate REAL,
                        started_at DATETIME NOT NULL,
                        updated_at DATETIME NOT NULL
                    )
                    """)
        }
        migrator.registerMigration("v8: runs set aside") { db in
            // When an operator set the job aside (`nassync ignore`): it is `failed`, and stays so
            // until a retry names it; nothing of it is sent or deleted meanwhile.
            try db.execute(sql: "ALTER TABLE jobs ADD COLUMN ignored_at DATETIME")
        }
        migrator.registerMigration("v9: free space of the instrument roots") { db in
            // Written by the agent's disk watch every minute, for `nassync status` and the metrics.
            try db.execute(
                sql: """
                    CREATE TABLE disk_space (
                        instrument TEXT PRIMARY KEY,
                        root TEXT NOT NULL,
                        free_bytes INTEGER NOT NULL,
                        total_bytes INTEGER NOT NULL,
                        hours_until_full REAL,
                        measured_at DATETIME NOT NULL
                    ) WITHOUT ROWID
                    """)
        }
        migrator.registerMigration("v10: files hashed on the NAS as they landed") { db in
            // The SHA-256 the NAS computed of a file while it was being sent (`LandingHash`): set
            // by the transfer that sent it, it stands in for the file's hash in the first verify
            // pass after that transfer, and is cleared by that pass and by the next transfer.
            try db.execute(sql: "ALTER TABLE files ADD COLUMN landed_sha256 TEXT")
        }
        return migrator
    }
}

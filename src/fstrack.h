/*
 * fstrack.h -- structures and prototypes of the fstrackd daemon, grouped by
 * the file that owns them (tmux style).  The wire protocol is in proto.h, the
 * fanotify compatibility constants in compat.h.
 *
 * LIFECYCLE.  Each module's init, start, stop and fini (the functions named
 * so below, or fstrackd.c's wrappers of them) run in the order of the table
 * at the top of fstrackd.c, stop and fini in its reverse; that table says
 * why.  Threads exist only between the starts and the stops.
 *
 * THREADS, what each owns, and what they share.
 *
 *   thread        owns (only it touches)            wakes on
 *   main          libuv loop, notification group    loop: fanotify fd,
 *                 (notify.c), control socket,       socket, timers, the
 *                 dircache.c, fstd.fs[] (*),        writer's uv_async
 *                 snapshot switches (daemon.c)
 *   writer        store.c: the only SQLite write    store_cond
 *   (store.c)     connection, store_st[]
 *   perm          perm.c: the permission group,     poll: group fd,
 *                 perm_dirs, perm_waits, perm_pend  store eventfd,
 *                                                   perm_wake eventfd
 *   ahead         armahead.c: its walk; arms go     ra_cond
 *   (armahead.c)  through perm's callback
 *   walk x4       reconcile.c walkers (start-up     rc_cond
 *   (reconcile.c) pass, hard-link searches)
 *   answer x4     answer.c: a read-only SQLite      answer_cond
 *   (answer.c)    connection each, the job it runs
 *                 and its peer's socket meanwhile,
 *                 an access.c walker per job; the
 *                 only threads with CAP_SETUID and
 *                 CAP_SETGID (fstrackd.c, privs)
 *
 * LOCKS, in the only order in which they nest (take left before right;
 * none is held across a wait on another thread, except as noted):
 *
 *   perm_lock -> ra_lock           perm thread requests an arm-ahead walk
 *   perm_lock -> store_lock        arms and records submitted under it
 *   perm_lock -> health_lock       the stall guard reports an episode
 *   rc_lock   -> store_lock        reconcile_start records gaps/checkpoints
 *   perm_lock, rc_lock -> log_lock messages logged under them
 *   store_lock, ra_lock, rc_lock   each also guards its condition variable
 *                                  (store_lock two: store_cond, store_room)
 *   links_lock, store_err_lock,    leaves: nothing is taken inside them
 *   health_lock, log_lock,
 *   answer_lock
 * perm_lock is taken by the perm thread, by the walker's callback
 * (perm_arm_ahead) and by the main thread at a snapshot switch
 * (perm_new_snapshot, which flushes the ignore marks under it).
 *
 * SHARED FIELDS and who writes them:
 *   fstd.cur_snapshot      main (daemon_snapshot); atomic
 *   fstd.reconciling,      main; atomic
 *   fstd.ready
 *   fstd.st.*              the thread named in each counter's use; atomic
 *   store_committed_seq    writer; atomic (perm and main read it)
 *   health flags/reasons   any thread; atomic flags, reasons under
 *                          health_lock (health.c)
 *   fs->reconcile_threshold  main, under rc_lock (walkers read it there)
 *   fs->checkpoint_ns      main; atomic (perm reads it: perm_young)
 *   fs->shed_snapshot      any thread, under store_lock
 *                          (store_shed_locked)
 *   fs->state (*)          main; atomic (the writer reads it:
 *                          store_refresh_paths; a stale read only delays
 *                          a path refresh)
 *   fstd.fs[].id, .mount_fd, fstd.db_path  set before any thread starts,
 *                          read by the answer threads
 * Nothing else is shared: threads hand work over through the writer queue
 * (store_submit, any thread), the arm-ahead queue, the reconcile queue and
 * the answer queue (answer_submit: main hands a job over, and gets it back
 * through a uv_async once done).
 * The writer queue is bounded: the main thread's drains and the walkers
 * wait for room (store_wait_room, holding no lock), the main thread's
 * poll stops reading meanwhile; perm and ahead never wait.  Not while
 * commits fail: then it grows to STORE_BACKLOG_MAX, past which records
 * are replaced by a gap per filesystem and snapshot (store_submit).
 */
#ifndef FSTRACK_H
#define FSTRACK_H

#include <sys/types.h>
#include <sys/vfs.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <uv.h>

#include "proto.h"

#include "dbformat.h"

enum fst_durability {
	DURABILITY_STRICT,
	DURABILITY_ASYNC
};

/* A file handle as the kernel hands it out; key of every directory. */
#define FST_HANDLE_MAX	128
struct fst_handle {
	int32_t		type;
	uint32_t	len;
	unsigned char	bytes[FST_HANDLE_MAX];
};

enum fst_fs_state {
	FS_TRACKED,
	FS_GONE
};

/* A tracked filesystem. */
struct fst_fs {
	int64_t			 id;		/* filesystems.id */
	char			*mountpoint;
	char			 fstype[32];
	fsid_t			 kfsid;		/* as reported in events */
	char			 fsid[40];
	char			 uuid[40];
	dev_t			 dev;
	struct fst_handle	 root;		/* handle of the mount root */
	int			 mount_fd;	/* O_RDONLY|O_DIRECTORY root fd */
	_Atomic enum fst_fs_state state;	/* written by main only */
	_Atomic int64_t		 checkpoint_ns;	/* newest checkpoint submitted:
						   never below the durable one */
	int64_t			 reconcile_threshold; /* ctime at or after: rescan */
	int			 is_new;	/* first tracked in this run */
	int64_t			 shed_snapshot;	/* a gap for dropped records
						   queued up to it (store.c,
						   store_lock) */
};

/* Run-time configuration (config.c fills it from file and command line). */
struct fst_config {
	char			*config_file;
	int			 config_explicit;
	char			*state_dir;
	char			*socket_path;
	enum fst_durability	 durability;
	int			 stall_timeout_ms;
	int			 barrier_walk_gap_ms;	/* BARRIER WALKS */
	int			 foreground;
	int			 debug;
	char			**mounts;
	int			 nmounts;
	long			 retention_snapshots;
	long			 retention_days;
	long			 consumer_idle_days;
	int			 merge_delay_ms;	/* let the kernel merge events */
	int			 bounded_queue;		/* testing: default-size queue */
	int			 reconcile_margin_ms;
	int			 max_conns_per_uid;	/* users other than root */
	int			 max_followers_per_uid;
};

/* Counters shown by status; written by one thread each, read racily. */
struct fst_stats {
	_Atomic uint64_t	events_read;
	_Atomic uint64_t	records_queued;
	_Atomic uint64_t	commits;
	_Atomic uint64_t	durable_commits;
	_Atomic uint64_t	commit_failures;
	_Atomic uint64_t	perm_events;
	_Atomic uint64_t	perm_held;
	_Atomic uint64_t	perm_stalled;
	_Atomic uint64_t	perm_covered;
	_Atomic uint64_t	perm_young;	/* write-opens of young files */
	_Atomic uint64_t	links_young;	/* link counts of young files */
	_Atomic uint64_t	barrier_walks;	/* walks of /proc for barriers */
	_Atomic uint64_t	barrier_walks_shared; /* barriers that waited
						   for the next walk */
	_Atomic uint64_t	perm_marks;
	_Atomic uint64_t	perm_armed_ahead;
	_Atomic uint64_t	perm_ahead_walks;	/* requests armahead.c served */
	_Atomic uint64_t	overflows;
	_Atomic uint64_t	self_events;
	_Atomic uint64_t	quiet_files;	/* quiet marks this snapshot */
	_Atomic uint64_t	queue_depth;
	_Atomic uint64_t	records_dropped;
	_Atomic uint64_t	reconcile_scanned;
	_Atomic uint64_t	reconcile_recorded;
};

/* The daemon's global state. */
struct fst_daemon {
	struct fst_config	 cfg;
	char			*db_path;
	uv_loop_t		*loop;
	struct fst_fs		*fs;
	int			 nfs;
	_Atomic int64_t		 cur_snapshot;
	int64_t			 first_snapshot;
	struct fst_stats	 st;
	_Atomic int		 reconciling;
	_Atomic int		 ready;
	pid_t			 pid;
	char			 journal_id[40];
	int64_t			 started_ns;
};

extern struct fst_daemon fstd;

/* health.c */
#define DEGRADED_STORE	0	/* commits fail */
#define DEGRADED_STALL	1	/* writers allowed before their record */
void	 health_set_degraded(int, const char *);
void	 health_clear_degraded(int);
int	 health_degraded(void);
void	 health_status(struct sbuf *);

/* config.c */
void	 config_defaults(struct fst_config *);
void	 config_free(struct fst_config *);
int	 config_load(struct fst_config *, const char *, int);
int	 config_parse_line(struct fst_config *, char *, const char *, int);
void	 config_add_mount(struct fst_config *, const char *);
int	 config_parse_durability(const char *, enum fst_durability *);

/* event.c */
struct fst_event {
	uint64_t		 mask;
	int32_t			 pid;
	int			 fd;
	int			 has_dir;
	fsid_t			 fsid;
	struct fst_handle	 dir;
	const char		*name;
	int			 has_child;
	struct fst_handle	 child;
	int			 has_rename;
	struct fst_handle	 old_dir;
	const char		*old_name;
	struct fst_handle	 new_dir;
	const char		*new_name;
};
int	 event_next(const void *, size_t, size_t *, struct fst_event *);
uint32_t event_mask_to_kinds(uint64_t);
void	 handle_to_blob(const struct fst_handle *, unsigned char *, size_t *);
int	 handle_from_blob(struct fst_handle *, const void *, size_t);
int	 handle_of_fd(int, const char *, int, struct fst_handle *);
int	 handle_mount_of_fd(int, const char *, int, struct fst_handle *,
	     int *);
int	 handle_equal(const struct fst_handle *, const struct fst_handle *);
uint64_t handle_hash(const struct fst_fs *, const struct fst_handle *);
int	 handle_open(int, const struct fst_handle *, int);
int	 fd_path(int, char *, size_t);
int	 handle_path(int, const struct fst_handle *, char *, size_t);

/* fsinfo.c */
void	 fsinfo_init(void);
void	 fsinfo_fini(void);
int	 fsinfo_probe(const char *, struct fst_fs *, char *, size_t);
struct fst_fs *fsinfo_by_fsid(const fsid_t *);
struct fst_fs *fsinfo_by_dev(dev_t);
int	 fsinfo_still_mounted(struct fst_fs *);
int64_t	 now_ns(void);
int64_t	 now_coarse_ns(void);

/* dircache.c */
struct dc_dir;
void	 dircache_init(void);
void	 dircache_set_move_hook(void (*)(struct fst_fs *, const char *));
void	 dircache_fini(void);
void	 dircache_new_snapshot(int64_t);
void	 dircache_new_epoch(void);
int64_t	 dircache_epoch_ns(void);
int	 dircache_record(struct fst_fs *, const struct fst_handle *,
	     const char *, uint32_t);
void	 dircache_rename(struct fst_fs *, const struct fst_handle *,
	     const char *, const struct fst_handle *, const char *);
void	 dircache_gone(struct fst_fs *, const struct fst_handle *);
size_t	 dircache_size(void);
int	 dircache_resolve(struct fst_fs *, const struct fst_handle *,
	     char *, size_t);

/* store.c */
enum store_op_type {
	OP_CHANGE,		/* entries of a directory changed */
	OP_DIR_MOVE,		/* a directory's subtree has a new path */
	OP_DIR_GONE,		/* a directory was removed */
	OP_SNAPSHOT,		/* a snapshot began */
	OP_GAP,			/* history is incomplete from a snapshot on */
	OP_CHECKPOINT,		/* every change before a time is recorded */
	OP_CONSUMER_SET,
	OP_CONSUMER_DELETE,
	OP_PRUNE,
	OP_BARRIER,		/* a query is about to read: refresh paths */
	OP_FS_STATE,
	OP_ARM,			/* writes may follow in a directory */
	OP_PROMOTE_ARMS,	/* after an unclean stop: arms become changes */
	OP_CLEAR_ARMS,
	OP_META,
	OP_POSITION,		/* a position was taken */
	OP_SYNC			/* writes nothing: a commit point */
};
struct store_op;
typedef void (*store_done_cb)(struct store_op *, int, void *);
/*
 * An operation for the writer, made by one of the store_op_* constructors
 * (the only way to fill the member of its type), then optionally marked
 * durable or given a done callback, and handed to store_submit.  Its
 * strings live in the same allocation (strings[]) and are the store's.
 * A member's fields marked "out" are set by the writer, for the done
 * callback to read.
 */
struct store_op {
	struct store_op		*next;
	enum store_op_type	 type;		/* says which member is set */
	uint64_t		 seq;		/* set by store_submit */
	int			 durable;	/* synchronous=FULL */
	int			 unhurried;	/* durable, nobody waits */
	store_done_cb		 done;		/* main thread, committed */
	void			*arg;		/* done's */
	union {
		struct {
			int64_t			 snapshot;
			int64_t			 fs_id;
			struct fst_handle	 dir;
			const char		*dir_path; /* hint; NULL */
			const char		*name;	/* the entry; "." */
			uint32_t		 kinds;	/* FST_M_* */
		} change;
		struct {
			int64_t		 fs_id;
			const char	*from;		/* the old path */
			const char	*to;		/* the new path */
		} dir_move;
		struct {
			int64_t			 fs_id;
			struct fst_handle	 dir;
		} dir_gone;
		struct {
			int64_t		 id;
			int64_t		 started_ns;
		} snapshot;
		struct {
			int64_t		 fs_id;		/* 0: every fs */
			int64_t		 snapshot;
			int64_t		 at_ns;
			const char	*reason;
		} gap;
		struct {
			int64_t		 fs_id;
			int64_t		 ns;
			int		 reset;		/* even backwards */
		} checkpoint;
		struct {
			const char	*name;
			int64_t		 cursor;
		} consumer_set;
		struct {
			const char	*name;
			int		 deleted;	/* out: 1, 0 if none */
		} consumer_delete;
		struct {
			int64_t		 before;	/* 0: by policy */
			int64_t		 pruned_to;	/* out: 0 if nothing */
		} prune;
		struct {
			int64_t		 since;		/* snapshot */
			int64_t		 since_seq;	/* position; 0: none */
			int		 take_position;
			int64_t		 position_snapshot; /* if taken */
		} barrier;
		struct {
			int64_t			 fs_id;
			enum fst_fs_state	 state;
		} fs_state;
		struct {
			int64_t			 snapshot;
			int64_t			 fs_id;
			struct fst_handle	 dir;
		} arm;
		struct {
			int64_t		 into;		/* snapshot */
			int64_t		 promoted;	/* out: how many */
		} promote_arms;
		struct {
			const char	*key;
			const char	*value;
		} meta;
		struct {
			int64_t		 snapshot;
		} position;
	};
	char			 strings[];
};
int	 store_open(const char *, char *, size_t);
int	 store_start(void);
void	 store_stop(void);
void	 store_close(void);
struct store_op *store_op_change(int64_t, int64_t, const struct fst_handle *,
	     const char *, const char *, uint32_t);
struct store_op *store_op_dir_move(int64_t, const char *, const char *);
struct store_op *store_op_dir_gone(int64_t, const struct fst_handle *);
struct store_op *store_op_snapshot(int64_t, int64_t);
struct store_op *store_op_gap(int64_t, int64_t, int64_t, const char *);
struct store_op *store_op_checkpoint(int64_t, int64_t);
struct store_op *store_op_checkpoint_reset(int64_t, int64_t);
struct store_op *store_op_consumer_set(const char *, int64_t);
struct store_op *store_op_consumer_delete(const char *);
struct store_op *store_op_prune(int64_t);
struct store_op *store_op_barrier(int64_t, int64_t);
struct store_op *store_op_barrier_position(int64_t, int64_t, int64_t);
struct store_op *store_op_fs_state(int64_t, enum fst_fs_state);
struct store_op *store_op_arm(int64_t, int64_t, const struct fst_handle *);
struct store_op *store_op_promote_arms(int64_t);
struct store_op *store_op_clear_arms(void);
struct store_op *store_op_meta(const char *, const char *);
struct store_op *store_op_position(int64_t);
struct store_op *store_op_sync(void);
void	 store_op_free(struct store_op *);
uint64_t store_submit(struct store_op *);
uint64_t store_submit_many(struct store_op **, int);
void	 store_record_gap(struct fst_fs *, const char *);
int	 store_queue_full(void);
void	 store_wait_room(void);
uint64_t store_committed(void);
void	 store_hurry(uint64_t);
void	 store_set_retry(int, int);
void	 store_set_backlog_max(uint64_t);
int64_t	 store_position_seq(uint64_t);
void	 store_positions_init(int64_t);
int	 store_event_fd(void);
int64_t	 store_max_snapshot(void);
int	 store_fs_attach(struct fst_fs *, int64_t *, char *, size_t);
int	 store_meta_get(const char *, char *, size_t);
const char *store_last_error(void);
int64_t	 store_db_size(void);

/* schema.c */
struct sqlite3;
int	 schema_check_or_create(struct sqlite3 *, int *, char *, size_t);

/* notify.c */
int	 notify_init(char *, size_t);
int	 notify_mark(struct fst_fs *, char *, size_t);
int	 notify_group_fd(void);
void	 notify_start(void);
void	 notify_drain(void);
void	 notify_quiet_flush(void);
void	 notify_quiet_resume(void);
void	 notify_stop(void);
void	 notify_checkpoint_tick(int);

/* perm.c */
int	 perm_init(char *, size_t);
int	 perm_mark(struct fst_fs *, char *, size_t);
int	 perm_start(void);
void	 perm_new_snapshot(int64_t);
void	 perm_stop(void);
uint64_t perm_pending(void);
int	 perm_fd(void);
int	 perm_fd_above(int);

/* armahead.c */
typedef int (*armahead_cb)(struct fst_fs *, uint64_t,
	     const struct fst_handle *, int, unsigned char *);
int	 armahead_start(armahead_cb);
void	 armahead_request(struct fst_fs *, const struct fst_handle *, uint64_t);
void	 armahead_stop(void);

/* openscan.c */
typedef void (*openscan_cb)(struct fst_fs *, const char *, void *);
int	 openscan_writers(openscan_cb, void *);

/* reconcile.c */
int	 reconcile_start(void);
void	 reconcile_stop(void);
void	 reconcile_progress(uint64_t *, uint64_t *, double *, double *);
int	 reconcile_wait_add(void (*)(void *), void *);
void	 reconcile_note_move(struct fst_fs *, const char *);
void	 reconcile_set_drain_hook(void (*)(void));
void	 reconcile_search_start(void);

/* links.c */
void	 links_add(struct fst_fs *, const struct fst_handle *,
	     const struct fst_handle *, const char *);
void	 links_remove(struct fst_fs *, const struct fst_handle *,
	     const struct fst_handle *, const char *);
int	 links_known(struct fst_fs *, const struct fst_handle *);
int	 links_foreach(struct fst_fs *, const struct fst_handle *,
	     void (*)(struct fst_fs *, const struct fst_handle *, const char *,
	     void *), void *);
void	 links_search(struct fst_fs *, uint64_t);
int	 links_search_begin(void);
int	 links_search_queued(void);
int	 links_searching(struct fst_fs *, uint64_t);
int	 links_search_on(const struct fst_fs *);
size_t	 links_count(void);

/* access.c */
struct access_peer {
	uid_t	 uid;
	gid_t	 gid;
	gid_t	*groups;	/* supplementary */
	int	 ngroups;
};
#define ACCESS_SELF	0x1	/* the peer may list the directory */
#define ACCESS_PARENT	0x2	/* ... the one that holds its name */
struct access_walk;
struct access_walk *access_walk_new(const struct access_peer *);
void	 access_walk_free(struct access_walk *);
int	 access_dir(struct access_walk *, int, const struct fst_handle *,
	     const char *);

/* answer.c */
struct query_seen;
struct answer_job {
	struct answer_job	*next;
	int			 fd;		/* the peer's socket */
	struct access_peer	 peer;		/* uid 0: every row shown */
	struct proto_since	 since;
	int			 flags;		/* Q_* (query.h) */
	int64_t			 cur;		/* the current snapshot */
	char			 position[PROTO_POSITION_MAX]; /* "": none */
	int64_t			 pos_seq;
	const struct query_seen	*skip;		/* --follow (query.h) */
	struct query_seen	*seen;
	int			 follow;	/* more answers may come */
	struct sbuf		 head;		/* lines to send first */
	_Atomic int		 cancel;	/* main: stop soon */
	int			 rc;		/* the answer's exit status */
	int			 cut;		/* the peer gone or cut off */
	int			 ended;		/* the final line was sent */
	void			(*done)(struct answer_job *);
	void			*arg;
};
int	 answer_start(void);
void	 answer_submit(struct answer_job *);
void	 answer_stop(void);

/* control.c */
int	 control_init(const char *, char *, size_t);
int	 control_adopt(int);
void	 control_stop(void);

/* daemon.c */
void	 daemon_init(void);
void	 daemon_stop(void);
void	 daemon_snapshot(void (*)(int64_t, int, void *), void *);
void	 daemon_prune_done(struct store_op *, int, void *);
#define DAEMON_BARRIER_POSITION	0x1	/* take a position with it */
#define DAEMON_BARRIER_NOSCAN	0x2	/* no walk of /proc (openscan.c) */
void	 daemon_barrier(int64_t, int64_t, int,
	     void (*)(int, int64_t, int64_t, void *), void *);
void	 daemon_position(void (*)(int, int64_t, int64_t, void *), void *);
int	 daemon_position_token(int64_t, int64_t, char *, size_t);
void	 daemon_status(struct sbuf *);
void	 daemon_sd_notify(const char *);
int	 daemon_drop_caps(void);
int	 daemon_drop_setid(void);

#endif

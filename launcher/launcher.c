/*
 * secrets-init launcher: the first few kilobytes of the single-file binary.
 *
 * The file is this static (musl) program followed by a zstd-compressed
 * PyInstaller one-dir tree and a fixed-size trailer. At start we find a
 * writable directory that allows executables and that no other user can
 * change, unpack the tree there once (into ".secrets-init-<uid>-<hash>",
 * reused by every later start of that user), and then execve() the tree's
 * bootloader in place of ourselves. No fork: the Python
 * supervisor that the bootloader starts must itself be PID 1, because only
 * PID 1 gets orphans re-parented to it and only PID 1 decides which signals
 * the kernel delivers to it.
 *
 * The tree carries its own glibc, so it runs in images without one
 * (scratch, Alpine, distroless/static). The bootloader's interpreter path
 * (PT_INTERP) and library path (DT_RPATH) are long placeholders written at
 * build time; after unpacking we overwrite them with the real paths, which
 * are only known now. Absolute paths also mean nothing needs /proc.
 *
 * The tree is cut into parts (packaging/parts.py): `core` (interpreter,
 * standard library, secrets-init) is unpacked for every run, a provider
 * family's parts (botocore; grpc and google-auth; the TLS libraries both
 * use) only when some environment value starts with that family's prefix:
 * a byte-prefix look, as secrets_init.candidates takes, never a parse. A
 * part a later run needs is added to the same tree under a lock.
 *
 * `secrets-init copy DEST_DIR` and `secrets-init lay DEST_DIR [FAMILY...]`
 * are handled here, without the Python tree: an initContainer's only
 * writable directory may be the volume it writes into. `lay` unpacks the
 * parts into DEST_DIR once per pod, ready to run from there, and writes
 * beside it this launcher without its payload, which then runs that tree
 * in place (read-only, owned by whoever laid it) or says what is wrong with it.
 *
 * Everything here is written for the worst case of a container runtime:
 * no /proc, no shell, maybe no /tmp, maybe a read-only root.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

/* Exit status when secrets-init cannot start at all (as `docker run` uses 125
 * for its own failures, distinct from the program's statuses). */
#define EXIT_LAUNCHER 125

#define TRAILER_MAGIC "SIBUNDL3"
#define CACHE_PREFIX ".secrets-init-"
/* packaging/pack.py's manifests: one per part of the tree, written last in
 * the part's stream, listing every file and symlink of the part and its
 * size, one per line as "KIND SIZE PATH" (KIND f for a file, l for a symlink). */
#define MANIFEST_FORMAT "secrets-init.%s.manifest"
#define MANIFEST_MAX (1 << 20)
/* In a tree that `lay` wrote: the directory it was laid at, which is also
 * the path patched into its bootloader. */
#define LAID_AT "secrets-init.laid-at"
#define MAX_FAMILIES 4
#define MAX_PARTS 8

/* A family of providers (packaging/parts.py's FAMILIES): an environment
 * value starting with `prefix` may be one of its references. */
struct family {
    char name[16];
    char prefix[32];
};

/* A part of the tree (packaging/parts.py's PARTS): one zstd stream. */
struct part {
    char name[16];
    char families[32];        /* comma-separated; empty: every run needs it */
    uint64_t offset;          /* of its stream, relative to payload_offset */
    uint64_t size;
};

/* Written by packaging/pack.py; little-endian, at the very end of the file. */
struct trailer {
    char magic[8];
    uint64_t payload_offset;  /* start of the first zstd stream in this file */
    uint64_t payload_size;    /* length of all streams; 0 in a launcher that `lay` wrote */
    uint64_t interp_offset;   /* PT_INTERP placeholder, offset in the bootloader file */
    uint64_t rpath_offset;    /* DT_RPATH placeholder, offset in the bootloader file */
    uint32_t interp_capacity; /* bytes available there, including the NUL */
    uint32_t rpath_capacity;
    uint32_t family_count;
    uint32_t part_count;
    uint32_t laid;            /* 1: no payload; the tree is next to this file */
    uint32_t pad;
    struct family families[MAX_FAMILIES];
    struct part parts[MAX_PARTS];
    char hash[32];            /* content hash, hex, NUL-padded: names the cache dir */
    char bootloader[64];      /* tree-relative paths, NUL-padded */
    char interp[64];
    char libdir[64];
};
_Static_assert(sizeof(struct trailer) == 992, "packaging/pack.py's TRAILER");

/* Record kinds of the unpacked stream. */
enum { REC_DIR = 'd', REC_FILE = 'f', REC_LINK = 'l', REC_END = 'e' };

struct record_header {
    uint8_t kind;
    uint8_t pad[3];
    uint32_t mode;
    uint32_t path_len;
    uint32_t pad2;
    uint64_t size;
};

static const char *self_path;
/* `lay`: the tree is for other users and containers to run (dirs 0755). */
static int laying;

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("secrets-init: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_LAUNCHER);
}

/* Write all of `buf`, through short writes and interrupted calls. */
static int write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* ---- where we are ---------------------------------------------------- */

/* The file the user ran: /proc/self/exe if /proc is there, else the path
 * the kernel was given (AT_EXECFN), made absolute against the cwd. */
static char *find_self(void)
{
    static char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = 0;
        return buf;
    }
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    if (!execfn || !*execfn)
        die("cannot find my own executable (no /proc and no AT_EXECFN)");
    if (execfn[0] == '/')
        return strdup(execfn);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        die("cannot find my own executable: getcwd: %s", strerror(errno));
    if (snprintf(buf, sizeof buf, "%s/%s", cwd, execfn) >= (int)sizeof buf)
        die("path of my own executable is too long");
    return buf;
}

static void read_trailer(int fd, struct trailer *t)
{
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < (off_t)sizeof *t || pread(fd, t, sizeof *t, end - (off_t)sizeof *t) != (ssize_t)sizeof *t
        || memcmp(t->magic, TRAILER_MAGIC, 8) != 0)
        die("%s is not a complete secrets-init binary (no bundle trailer)", self_path);
    t->hash[sizeof t->hash - 1] = 0;
    t->bootloader[sizeof t->bootloader - 1] = 0;
    t->interp[sizeof t->interp - 1] = 0;
    t->libdir[sizeof t->libdir - 1] = 0;
    if (t->family_count > MAX_FAMILIES || t->part_count == 0 || t->part_count > MAX_PARTS)
        die("%s is not a complete secrets-init binary (bad part table)", self_path);
    for (uint32_t i = 0; i < MAX_FAMILIES; i++) {
        t->families[i].name[sizeof t->families[i].name - 1] = 0;
        t->families[i].prefix[sizeof t->families[i].prefix - 1] = 0;
    }
    for (uint32_t i = 0; i < MAX_PARTS; i++) {
        t->parts[i].name[sizeof t->parts[i].name - 1] = 0;
        t->parts[i].families[sizeof t->parts[i].families - 1] = 0;
        if (!t->laid && i < t->part_count && t->parts[i].offset + t->parts[i].size > t->payload_size)
            die("%s is truncated", self_path);
    }
    if (t->payload_offset + t->payload_size > (uint64_t)end - sizeof *t)
        die("%s is truncated", self_path);
}

/* ---- which parts a run needs ----------------------------------------- */

/* Whether `name` is in the comma-separated `list`. */
static int listed(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n == len && strncmp(p, name, len) == 0)
            return 1;
        p += n + (p[n] ? 1 : 0);
    }
    return 0;
}

/* The parts (a bit per index) a run needs when the families in `present`
 * (a bit per family index) have references: those every run needs, and
 * those of a family present. */
static unsigned parts_for(const struct trailer *t, unsigned present)
{
    unsigned mask = 0;
    for (uint32_t i = 0; i < t->part_count; i++) {
        if (!t->parts[i].families[0])
            mask |= 1u << i;
        for (uint32_t f = 0; f < t->family_count; f++)
            if ((present & (1u << f)) && listed(t->parts[i].families, t->families[f].name))
                mask |= 1u << i;
    }
    return mask;
}

/* The families whose prefix starts some environment value: the byte-prefix
 * look of secrets_init.candidates, never a parse (tests/binary/test_parts.py
 * keeps the prefixes equal to the provider registry's). */
static unsigned families_in(const struct trailer *t, char **envp)
{
    unsigned present = 0;
    for (char **e = envp; *e; e++) {
        const char *value = strchr(*e, '=');
        if (!value)
            continue;
        value++;
        for (uint32_t f = 0; f < t->family_count; f++)
            if (t->families[f].prefix[0] && strncmp(value, t->families[f].prefix, strlen(t->families[f].prefix)) == 0)
                present |= 1u << f;
    }
    return present;
}

/* "core+aws": the names of the parts in `mask`, for messages. */
static const char *part_names(const struct trailer *t, unsigned mask)
{
    static char names[MAX_PARTS * 17];
    names[0] = 0;
    for (uint32_t i = 0; i < t->part_count; i++)
        if (mask & (1u << i))
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", names[0] ? "+" : "",
                     t->parts[i].name);
    return names;
}

/* ---- choosing the cache directory ------------------------------------ */

/* Why each base was rejected, for the one error message we may have to print. */
static char reasons[4096];

static void reject(const char *base, const char *fmt, ...)
{
    size_t used = strlen(reasons);
    if (used >= sizeof reasons - 1)
        return;
    int n = snprintf(reasons + used, sizeof reasons - used, "  %s: ", base);
    if (n < 0 || (size_t)n >= sizeof reasons - used)
        return;
    used += (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reasons + used, sizeof reasons - used, fmt, ap);
    va_end(ap);
    used = strlen(reasons);
    if (used < sizeof reasons - 1) {
        reasons[used] = '\n';
        reasons[used + 1] = 0;
    }
}

static int join(char *out, size_t size, const char *dir, const char *name)
{
    const char *sep = (dir[0] && dir[strlen(dir) - 1] == '/') ? "" : "/";
    return snprintf(out, size, "%s%s%s", dir, sep, name) < (int)size ? 0 : -1;
}

/* A directory is safe to reach our tree through if no user but us and root
 * can rename or replace what is in it: owned by us or root, and writable by
 * group or others only with the sticky bit (as /tmp is). Anything else could
 * swap our tree for theirs between our checks and the bootloader's opens,
 * which are by path (hundreds of them, over more than half a second). */
static int safe_dir(int fd, const char *base, const char *shown)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        reject(base, "%s: %s", shown, strerror(errno));
        return 0;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        reject(base, "%s is owned by uid %u, not by us or root; not trusted", shown, (unsigned)st.st_uid);
        return 0;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
        reject(base, "%s is writable by others and not sticky (mode %04o); not trusted", shown,
               (unsigned)(st.st_mode & 07777));
        return 0;
    }
    return 1;
}

/* Open `base` (absolute, as realpath() gives it) one component at a time from
 * /, never following a symlink, and check every directory on the way: these
 * are the very directories that every later path under `base` goes through,
 * and once each is safe, none of them can change under us. An O_PATH
 * descriptor of `base`, or -1 after saying why. */
static int open_base(const char *base)
{
    char shown[PATH_MAX] = "/";
    int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || !safe_dir(fd, base, shown)) {
        if (fd < 0)
            reject(base, "/: %s", strerror(errno));
        else
            close(fd);
        return -1;
    }
    size_t shown_len = 0;
    for (const char *p = base; *p;) {
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (len == 0)
            break;
        char name[NAME_MAX + 1];
        if (len > NAME_MAX || shown_len + 1 + len >= sizeof shown) {
            reject(base, "path too long");
            close(fd);
            return -1;
        }
        memcpy(name, p, len);
        name[len] = 0;
        shown[shown_len] = '/';
        memcpy(shown + shown_len + 1, p, len);
        shown_len += 1 + len;
        shown[shown_len] = 0;
        p += len;
        int next = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        if (next < 0) {
            reject(base, "%s: %s", shown, strerror(errno));
            return -1;
        }
        fd = next;
        if (!safe_dir(fd, base, shown)) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* A base directory must be writable and on a filesystem that allows exec. */
static int usable_base(const char *base)
{
    struct statvfs vfs;
    if (statvfs(base, &vfs) == 0) {
        if (vfs.f_flag & ST_NOEXEC) {
            reject(base, "mounted noexec");
            return 0;
        }
        if (vfs.f_flag & ST_RDONLY) {
            reject(base, "read-only file system");
            return 0;
        }
    }
    if (access(base, W_OK | X_OK) != 0) {
        reject(base, "not writable: %s", strerror(errno));
        return 0;
    }
    return 1;
}

/* 1 if every file and symlink that part `part`'s manifest lists is in
 * `cache` with its size. A /tmp cleaner removes files it thinks unused (an
 * extension module the last runs did not import), and a writer killed
 * mid-way leaves a part without its manifest (the last file it writes); a
 * hundred fstatat() calls cost well under a millisecond. */
static int complete(int cache, const char *part)
{
    char manifest[64];
    snprintf(manifest, sizeof manifest, MANIFEST_FORMAT, part);
    int fd = openat(cache, manifest, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    char *text = NULL;
    int ok = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > MANIFEST_MAX
        || !(text = malloc((size_t)st.st_size + 1)))
        goto out;
    for (off_t at = 0; at < st.st_size;) {
        ssize_t n = pread(fd, text + at, (size_t)(st.st_size - at), at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        at += n;
    }
    text[st.st_size] = 0;
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        if (!end)
            goto out;
        *end = 0;
        char kind = line[0], *path;
        unsigned long long size = strtoull(line + 1, &path, 10);
        if ((kind != 'f' && kind != 'l') || line[1] != ' ' || *path != ' ' || !path[1])
            goto out;
        if (fstatat(cache, path + 1, &st, AT_SYMLINK_NOFOLLOW) != 0
            || (kind == 'f' ? !S_ISREG(st.st_mode) : !S_ISLNK(st.st_mode))
            || (unsigned long long)st.st_size != size)
            goto out;
        line = end + 1;
    }
    ok = 1;
out:
    free(text);
    close(fd);
    return ok;
}

/* The parts of `mask` that are not complete in `cache`. */
static unsigned missing_parts(int cache, const struct trailer *t, unsigned mask)
{
    unsigned missing = 0;
    for (uint32_t i = 0; i < t->part_count; i++)
        if ((mask & (1u << i)) && !complete(cache, t->parts[i].name))
            missing |= 1u << i;
    return missing;
}

/* The mask of the first part, core, which every run needs (packaging/parts.py).
 * check_cache() has found it complete when it says 1, so it is not listed twice. */
#define CORE_PART 1u

/* A cache directory found by name is ours only if we made it: a directory
 * (not a symlink) owned by us (or, for a tree that `lay` wrote, by `owner`:
 * whoever owns the launcher we run could change it anyway), writable by
 * nobody else, on an exec mount, holding a bootloader of that owner and the
 * tree's first part complete. Returns 1 trusted, 0 absent, -1 refused, -2
 * present but incomplete (safe to replace). */
static int check_cache(int base_fd, const char *base, const char *name, const char *dir,
                       const struct trailer *t, uid_t owner)
{
    struct stat st;
    struct statvfs vfs;
    int fd = openat(base_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        if (saved == ENOENT)
            return 0;
        if (fstatat(base_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            reject(base, "%s: %s", dir, strerror(saved));
        else if (!S_ISDIR(st.st_mode))
            reject(base, "%s exists and is not a directory; not trusted", dir);
        else if (st.st_uid != owner)
            reject(base, "%s is owned by uid %u, not by us; not trusted", dir, (unsigned)st.st_uid);
        else
            reject(base, "%s: %s", dir, strerror(saved));
        return -1;
    }
    int state = -1;
    if (fstat(fd, &st) != 0) {
        reject(base, "%s: %s", dir, strerror(errno));
    } else if (st.st_uid != owner && st.st_uid != geteuid()) {
        reject(base, "%s is owned by uid %u, not by us; not trusted", dir, (unsigned)st.st_uid);
    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        reject(base, "%s is writable by others; not trusted", dir);
    } else if (fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_NOEXEC)) {
        reject(base, "mounted noexec");
    } else if (fstatat(fd, t->bootloader, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)
               || (st.st_uid != owner && st.st_uid != geteuid()) || !complete(fd, t->parts[0].name)) {
        state = -2;
    } else {
        state = 1;
    }
    close(fd);
    return state;
}

/* ---- unpacking ------------------------------------------------------- */

struct stream {
    int fd;
    uint64_t left;            /* compressed bytes not yet read */
    ZSTD_DStream *z;
    unsigned char *in;
    size_t in_cap;
    ZSTD_inBuffer ib;
    unsigned char *out;
    size_t out_cap;
    size_t out_pos, out_len;  /* unread decompressed bytes: out[out_pos..out_len) */
    int ended;                /* the zstd frame is complete */
};

/* Refill the decompressed buffer; -1 on a corrupt or short stream. */
static int refill(struct stream *s)
{
    s->out_pos = s->out_len = 0;
    while (s->out_len == 0) {
        if (s->ib.pos == s->ib.size) {
            if (s->left == 0)
                return -1;
            size_t want = s->left < s->in_cap ? (size_t)s->left : s->in_cap;
            ssize_t n = read(s->fd, s->in, want);
            if (n <= 0)
                return -1;
            s->left -= (uint64_t)n;
            s->ib.src = s->in;
            s->ib.size = (size_t)n;
            s->ib.pos = 0;
        }
        ZSTD_outBuffer ob = {s->out, s->out_cap, 0};
        size_t rc = ZSTD_decompressStream(s->z, &ob, &s->ib);
        if (ZSTD_isError(rc))
            return -1;
        s->out_len = ob.pos;
    }
    return 0;
}

/* Copy the next `n` decompressed bytes into `dst`, or to `fd` if dst is NULL. */
static int take(struct stream *s, void *dst, uint64_t n, int fd)
{
    unsigned char *p = dst;
    while (n > 0) {
        if (s->out_pos == s->out_len && refill(s) != 0)
            return -1;
        size_t chunk = s->out_len - s->out_pos;
        if (chunk > n)
            chunk = (size_t)n;
        if (p) {
            memcpy(p, s->out + s->out_pos, chunk);
            p += chunk;
        } else if (write_all(fd, s->out + s->out_pos, chunk) != 0) {
            return -1;
        }
        s->out_pos += chunk;
        n -= chunk;
    }
    return 0;
}

static int safe_relative(const char *path)
{
    if (!*path || path[0] == '/')
        return 0;
    for (const char *p = path; *p;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 2 && p[0] == '.' && p[1] == '.') || (len == 1 && p[0] == '.'))
            return 0;
        p += len + (slash ? 1 : 0);
    }
    return 1;
}

/* Unpack one stream (`size` bytes at `offset`) into directory fd `root`.
 * errno is set on failure. */
static int unpack_stream(int self_fd, uint64_t offset, uint64_t size, int root)
{
    struct stream s = {0};
    int ok = -1;
    char path[PATH_MAX];
    s.fd = self_fd;
    s.left = size;
    s.in_cap = ZSTD_DStreamInSize();
    s.out_cap = ZSTD_DStreamOutSize() * 4;
    s.in = malloc(s.in_cap);
    s.out = malloc(s.out_cap);
    s.z = ZSTD_createDStream();
    if (!s.in || !s.out || !s.z || ZSTD_isError(ZSTD_initDStream(s.z))) {
        errno = ENOMEM;
        goto out;
    }
    if (lseek(self_fd, (off_t)offset, SEEK_SET) < 0)
        goto out;
    for (;;) {
        struct record_header h;
        if (take(&s, &h, sizeof h, -1) != 0)
            goto corrupt;
        if (h.kind == REC_END)
            break;
        if (h.path_len == 0 || h.path_len >= sizeof path || take(&s, path, h.path_len, -1) != 0)
            goto corrupt;
        path[h.path_len] = 0;
        if (!safe_relative(path))
            goto corrupt;
        mode_t mode = (mode_t)(h.mode & 0755);
        /* Every file lands under a name of its own and is renamed into
         * place: a part added to a tree in use never shows a half-written
         * file, and what a killed writer left is simply replaced. */
        char staged[PATH_MAX + 16];
        snprintf(staged, sizeof staged, "%s.unpacking", path);
        if (h.kind == REC_DIR) {
            if (mkdirat(root, path, laying ? 0755 : 0700) != 0 && errno != EEXIST)
                goto out;
        } else if (h.kind == REC_FILE) {
            int fd = openat(root, staged, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
            if (fd < 0)
                goto out;
            if (take(&s, NULL, h.size, fd) != 0) {
                int saved = errno;
                close(fd);
                unlinkat(root, staged, 0);
                errno = saved ? saved : EIO;
                goto out;
            }
            if (close(fd) != 0 || renameat(root, staged, root, path) != 0) {
                int saved = errno;
                unlinkat(root, staged, 0);
                errno = saved;
                goto out;
            }
        } else if (h.kind == REC_LINK) {
            char target[PATH_MAX];
            if (h.size == 0 || h.size >= sizeof target || take(&s, target, h.size, -1) != 0)
                goto corrupt;
            target[h.size] = 0;
            unlinkat(root, staged, 0);
            if (target[0] == '/' || symlinkat(target, root, staged) != 0)
                goto corrupt;
            if (renameat(root, staged, root, path) != 0)
                goto out;
        } else {
            goto corrupt;
        }
    }
    ok = 0;
    goto out;
corrupt:
    die("%s: the bundled tree is corrupt (rebuild or re-download the binary)", self_path);
out:
    if (s.z)
        ZSTD_freeDStream(s.z);
    free(s.in);
    free(s.out);
    return ok;
}

/* Unpack the parts of `mask` into directory fd `root`, each part's stream
 * in a process of its own: decompression is most of a first start's time.
 * errno is set on failure. */
static int unpack(int self_fd, const struct trailer *t, int root, unsigned mask)
{
    pid_t helpers[MAX_PARTS];
    int count = 0, mine = -1, rc = 0, saved = 0;
    for (uint32_t i = 0; i < t->part_count; i++) {
        if (!(mask & (1u << i)))
            continue;
        if (mine < 0) {
            mine = (int)i;
            continue;
        }
        const struct part *p = &t->parts[i];
        pid_t pid = fork();
        if (pid == 0) {
            int fd = open(self_path, O_RDONLY | O_CLOEXEC);
            _exit(fd >= 0 && unpack_stream(fd, t->payload_offset + p->offset, p->size, root) == 0
                      ? 0
                      : (errno ? errno : EIO) & 0x7f);
        }
        if (pid < 0) { /* No second process to be had: do it ourselves. */
            if (unpack_stream(self_fd, t->payload_offset + p->offset, p->size, root) != 0 && rc == 0) {
                rc = -1;
                saved = errno;
            }
            continue;
        }
        helpers[count++] = pid;
    }
    if (mine >= 0 && unpack_stream(self_fd, t->payload_offset + t->parts[mine].offset, t->parts[mine].size, root) != 0
        && rc == 0) {
        rc = -1;
        saved = errno;
    }
    for (int h = 0; h < count; h++) {
        int status;
        while (waitpid(helpers[h], &status, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) == EXIT_LAUNCHER)
            die("%s: the bundled tree is corrupt (rebuild or re-download the binary)", self_path);
        if (WEXITSTATUS(status) != 0 && rc == 0) {
            rc = -1;
            saved = WEXITSTATUS(status);
        }
    }
    errno = saved;
    return rc;
}

/* Write the final absolute paths over the bootloader's placeholders. */
static int patch_bootloader(int root, const char *final_dir, const struct trailer *t)
{
    char interp[PATH_MAX], rpath[PATH_MAX];
    if (join(interp, sizeof interp, final_dir, t->interp) != 0
        || join(rpath, sizeof rpath, final_dir, t->libdir) != 0
        || strlen(interp) + 1 > t->interp_capacity || strlen(rpath) + 1 > t->rpath_capacity) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = openat(root, t->bootloader, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    size_t ilen = strlen(interp) + 1, rlen = strlen(rpath) + 1;
    int rc = (pwrite(fd, interp, ilen, (off_t)t->interp_offset) == (ssize_t)ilen
              && pwrite(fd, rpath, rlen, (off_t)t->rpath_offset) == (ssize_t)rlen)
                 ? 0
                 : -1;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Delete everything in the directory open at `fd`. Every step goes through a
 * descriptor opened with O_NOFOLLOW from the one above, never through a
 * path, so a symlink or another directory put in place of one we are
 * deleting is never followed; a directory that is not ours is left alone. */
static void empty_dir(int fd, int depth)
{
    int list_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = list_fd >= 0 ? fdopendir(list_fd) : NULL;
    if (!d) {
        if (list_fd >= 0)
            close(list_fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN) {
            int sub = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                struct stat st;
                /* The tree is a few levels deep; the bound keeps descriptors few. */
                if (depth < 32 && fstat(sub, &st) == 0 && st.st_uid == geteuid())
                    empty_dir(sub, depth + 1);
                close(sub);
                unlinkat(fd, e->d_name, AT_REMOVEDIR);
                continue;
            }
        }
        unlinkat(fd, e->d_name, 0);
    }
    closedir(d);
}

/* Delete the tree `name` in the directory open at `parent`, if it is a
 * directory of ours. */
static void remove_tree(int parent, const char *name)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_uid == geteuid()) {
        empty_dir(fd, 0);
        unlinkat(parent, name, AT_REMOVEDIR);
    }
    close(fd);
}

/* Record where a laid tree's bootloader expects to be, for the launcher
 * that runs it to compare with where the volume is mounted. */
static int write_laid_at(int root, const char *dir)
{
    int fd = openat(root, LAID_AT, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, dir, strlen(dir));
    int saved = errno;
    if (close(fd) != 0 && rc == 0)
        return -1;
    errno = saved;
    return rc;
}

/* Whether the tree open at `cache` was laid at `dir`. */
static int laid_at_matches(int cache, const char *dir)
{
    char at[PATH_MAX];
    int fd = openat(cache, LAID_AT, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n = fd >= 0 ? pread(fd, at, sizeof at - 1, 0) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 0;
    at[n] = 0;
    return strcmp(at, dir) == 0;
}

/* Remove unpack directories left by a start that was killed mid-way: an
 * unpacker holds a lock on its directory, so an old one we can lock is abandoned. */
static void remove_abandoned(int base_fd, const char *stem, time_t min_age)
{
    int list_fd = openat(base_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = list_fd >= 0 ? fdopendir(list_fd) : NULL;
    if (!d) {
        if (list_fd >= 0)
            close(list_fd);
        return;
    }
    size_t stem_len = strlen(stem);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, stem, stem_len) != 0 || strncmp(e->d_name + stem_len, ".tmp-", 5) != 0)
            continue;
        int fd = openat(base_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        /* An unpack takes well under a second; a minute-old unlocked one is
         * dead (`lay`, alone in its initContainer, needs no such margin). */
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && st.st_mtime <= time(NULL) - min_age
            && flock(fd, LOCK_EX | LOCK_NB) == 0) {
            empty_dir(fd, 0);
            unlinkat(base_fd, e->d_name, AT_REMOVEDIR);
        }
        close(fd);
    }
    closedir(d);
}

/* Make `name` (in `base`, open at `base_fd`; `dir` is its full path) hold the
 * unpacked tree. 0 on success. */
static int install(int self_fd, const struct trailer *t, int base_fd, const char *base, const char *name,
                   const char *dir, unsigned mask)
{
    char tmp[NAME_MAX + 1];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld-%lx", name, (long)getpid(), (unsigned long)now.tv_nsec)
        >= (int)sizeof tmp) {
        reject(base, "path too long");
        return -1;
    }
    remove_abandoned(base_fd, name, laying ? 0 : 60);
    if (mkdirat(base_fd, tmp, laying ? 0755 : 0700) != 0) {
        reject(base, "cannot create a directory: %s", strerror(errno));
        return -1;
    }
    int root = openat(base_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root < 0 || flock(root, LOCK_EX) != 0) {
        reject(base, "cannot open %s/%s: %s", base, tmp, strerror(errno));
        if (root >= 0)
            close(root);
        unlinkat(base_fd, tmp, AT_REMOVEDIR);
        return -1;
    }
    if (unpack(self_fd, t, root, mask) != 0 || patch_bootloader(root, dir, t) != 0
        || (laying && write_laid_at(root, dir) != 0)) {
        reject(base, "cannot unpack: %s", strerror(errno));
        empty_dir(root, 0);
        close(root);
        unlinkat(base_fd, tmp, AT_REMOVEDIR);
        return -1;
    }
    if (renameat(base_fd, tmp, base_fd, name) != 0) {
        /* Another start got there first (ENOTEMPTY/EEXIST): keep theirs. */
        int saved = errno;
        empty_dir(root, 0);
        close(root);
        unlinkat(base_fd, tmp, AT_REMOVEDIR);
        if (check_cache(base_fd, base, name, dir, t, geteuid()) == 1)
            return 0;
        reject(base, "cannot rename into place: %s", strerror(saved));
        return -1;
    }
    close(root);
    return 0;
}

/* Add the parts of `mask` that `name` lacks to that tree, which other runs
 * may be using: under an exclusive lock on the directory, every file renamed
 * into place, each part's manifest last. 0 on success. */
static int add_parts(int self_fd, const struct trailer *t, int base_fd, const char *base, const char *name,
                     unsigned mask)
{
    int root = openat(base_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root < 0 || flock(root, LOCK_EX) != 0) {
        reject(base, "cannot open %s/%s: %s", base, name, strerror(errno));
        if (root >= 0)
            close(root);
        return -1;
    }
    unsigned missing = missing_parts(root, t, mask); /* again: another start may have added them */
    int rc = 0;
    if (missing && unpack(self_fd, t, root, missing) != 0) {
        reject(base, "cannot add %s to %s/%s: %s", part_names(t, missing), base, name, strerror(errno));
        rc = -1;
    }
    close(root); /* and with it the lock */
    return rc;
}

/* ---- copy DEST_DIR --------------------------------------------------- */

/* secrets_init.config.USAGE, which a test keeps this equal to. */
static const char USAGE[] = "usage: secrets-init [OPTIONS] [--] COMMAND [ARG...]\n"
                            "       secrets-init copy DEST_DIR\n"
                            "       secrets-init lay DEST_DIR [aws|google|all|none...]\n"
                            "       secrets-init --version | --help\n";

static const char *const LOG_LEVELS[] = {"debug", "info", "warning", "error", NULL};
static const char *const LOG_FORMATS[] = {"text", "json", NULL};

/* What secrets_init.config does with a bad command line or SECRETS_INIT_* value. */
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("secrets-init: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", USAGE);
    exit(2);
}

/* Index of SECRETS_INIT_<name>'s value in `choices`, `fallback` when unset. */
static int log_setting(const char *variable, const char *option, const char *const *choices, int fallback)
{
    const char *value = getenv(variable);
    if (!value)
        return fallback;
    for (int i = 0; choices[i]; i++)
        if (strcmp(value, choices[i]) == 0)
            return i;
    char list[64] = "";
    for (int i = 0; choices[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", choices[i]);
    usage_error("%s: '%s' is not one of %s", option, value, list);
    return fallback;
}

/* Longest message: a path and a cause. */
#define MSG_MAX (2 * PATH_MAX)

/* One line on stderr as secrets_init.log writes it: `secrets-init: LEVEL: msg`
 * with line breaks escaped, or a JSON object with time, level and msg. */
static void log_line(int json, const char *level, const char *msg)
{
    /* Room for every byte of the message escaped as \u00XX, plus the rest. */
    static char line[6 * MSG_MAX + 128];
    size_t n = 0;
#define PUT(...) (n += (size_t)snprintf(line + n, sizeof line - n, __VA_ARGS__))
    if (json) {
        struct timespec now = {0};
        struct tm tm = {0};
        if (clock_gettime(CLOCK_REALTIME, &now) != 0 || !gmtime_r(&now.tv_sec, &tm))
            tm.tm_mday = 1; /* 1900-01-01: a clock this broken is worth seeing */
        PUT("{\"time\": \"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\", \"level\": \"%s\", \"msg\": \"",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
            now.tv_nsec / 1000000, level);
    } else {
        PUT("secrets-init: %s: ", level);
    }
    for (const unsigned char *c = (const unsigned char *)msg; *c; c++) {
        if (*c == '\n' || *c == '\r')
            PUT("\\%c", *c == '\n' ? 'n' : 'r');
        else if (json && (*c == '"' || *c == '\\'))
            PUT("\\%c", *c);
        else if (json && *c == '\t')
            PUT("\\t");
        else if (json && *c < 0x20)
            PUT("\\u%04x", *c);
        else
            line[n++] = (char)*c;
    }
    PUT(json ? "\"}\n" : "\n");
#undef PUT
    write_all(2, line, n); /* nowhere left to report a failure to */
}

/* Copy the file the user ran to DEST_DIR/secrets-init: under a temporary name
 * that we create (never a symlink someone left there), mode 0755, synced,
 * then renamed into place, so that a container starting from the same
 * volume never executes half a file. 0, or -1 with errno set. */
static int copy_self(int self_fd, const char *dest, const struct trailer *stub)
{
    static unsigned char buf[1 << 16];
    char tmp[64];
    int fd = -1, saved;
    const char *dir_path = *dest ? dest : ".";
    int dir = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 && errno == EACCES) /* writable but not readable: still a place to copy to */
        dir = open(dir_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -1;
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        goto fail_dir;
    /* A container restarted in the same pod has the same PID: the time and a
     * counter make the name unique, O_EXCL makes sure it is ours. */
    for (int attempt = 0; fd < 0; attempt++) {
        snprintf(tmp, sizeof tmp, "secrets-init.tmp-%ld-%lx", (long)getpid(),
                 (unsigned long)now.tv_nsec + (unsigned long)attempt);
        fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755);
        if (fd < 0 && (errno != EEXIST || attempt == 100))
            goto fail_dir;
    }
    /* All of it, or (`stub`) the launcher alone followed by `stub`. */
    for (off_t at = 0;;) {
        size_t want = sizeof buf;
        if (stub && (uint64_t)at + want > stub->payload_offset)
            want = (size_t)(stub->payload_offset - (uint64_t)at);
        ssize_t n = want ? pread(self_fd, buf, want, at) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || write_all(fd, buf, (size_t)n) != 0)
            goto fail_file;
        if (n == 0)
            break;
        at += n;
    }
    if (stub && write_all(fd, stub, sizeof *stub) != 0)
        goto fail_file;
    if (fchmod(fd, 0755) != 0 || fsync(fd) != 0)
        goto fail_file;
    saved = close(fd);
    fd = -1;
    if (saved != 0 || renameat(dir, tmp, dir, "secrets-init") != 0)
        goto fail_file;
    /* The rename is durable once the directory is synced. EINVAL: this file
     * system cannot sync a directory; EBADF: opened O_PATH, as above. */
    if (fsync(dir) != 0 && errno != EINVAL && errno != EBADF)
        goto fail_dir;
    return close(dir);
fail_file:
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlinkat(dir, tmp, 0); /* best effort: the error that matters is in errno */
    errno = saved;
fail_dir:
    saved = errno;
    close(dir);
    errno = saved;
    return -1;
}

/* `secrets-init copy DEST_DIR`, as secrets_init.cli does it: 0 when copied,
 * 1 (with a line naming DEST_DIR) when not, 2 for a usage error. */
static int copy_command(int argc, char **argv, int self_fd)
{
    if (argc != 3)
        usage_error("copy takes exactly one argument: DEST_DIR");
    int level = log_setting("SECRETS_INIT_LOG_LEVEL", "--log-level", LOG_LEVELS, 1);
    int json = log_setting("SECRETS_INIT_LOG_FORMAT", "--log-format", LOG_FORMATS, 0);
    const char *dest = argv[2];
    char msg[MSG_MAX];
    if (copy_self(self_fd, dest, NULL) != 0) {
        snprintf(msg, sizeof msg, "copy to %s: %s", dest, strerror(errno));
        log_line(json, "error", msg);
        return 1;
    }
    /* The path as Python's os.path.join(dest, "secrets-init") spells it. */
    const char *sep = (!*dest || dest[strlen(dest) - 1] == '/') ? "" : "/";
    snprintf(msg, sizeof msg, "copied to %s%ssecrets-init", dest, sep);
    if (level <= 1)
        log_line(json, "info", msg);
    return 0;
}

/* ---- lay DEST_DIR [FAMILY...] ------------------------------------- */

/* `secrets-init lay DEST_DIR [FAMILY...]`, for an initContainer: unpack the
 * parts that references of these families need (all when none is named)
 * into DEST_DIR/.secrets-init-<hash>, ready to run from that very path, and
 * put beside it DEST_DIR/secrets-init, this launcher without the payload
 * (~0.1 MB). Containers that mount the volume at the same path, read-only,
 * then start with nothing to unpack and nothing to write. The tree is
 * renamed into place only when complete, and the launcher written after it,
 * so a lay stopped mid-way or a full volume leaves nothing that would run.
 * 0 when laid, 1 (naming DEST_DIR and why) when not, 2 for a usage error. */
static int lay_command(int argc, char **argv, int self_fd, const struct trailer *t)
{
    if (argc < 3)
        usage_error("lay takes DEST_DIR and the provider families to lay (none given: all)");
    int level = log_setting("SECRETS_INIT_LOG_LEVEL", "--log-level", LOG_LEVELS, 1);
    int json = log_setting("SECRETS_INIT_LOG_FORMAT", "--log-format", LOG_FORMATS, 0);
    const char *dest = argv[2];
    unsigned all = (1u << t->family_count) - 1, present = argc == 3 ? all : 0;
    for (int a = 3; a < argc; a++) {
        int found = strcmp(argv[a], "all") == 0 || strcmp(argv[a], "none") == 0;
        if (strcmp(argv[a], "all") == 0)
            present = all;
        for (uint32_t f = 0; f < t->family_count && !found; f++)
            if (strcmp(argv[a], t->families[f].name) == 0) {
                present |= 1u << f;
                found = 1;
            }
        if (!found) {
            char list[96] = "";
            for (uint32_t f = 0; f < t->family_count; f++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s, ", t->families[f].name);
            usage_error("lay: '%s' is not one of %sall, none", argv[a], list);
        }
    }
    unsigned mask = parts_for(t, present);
    char msg[MSG_MAX], base[PATH_MAX], name[sizeof CACHE_PREFIX + sizeof t->hash], dir[PATH_MAX];
    snprintf(name, sizeof name, "%s%s", CACHE_PREFIX, t->hash);
    laying = 1;
    umask(022);
    int base_fd = -1;
    if (!realpath(*dest ? dest : ".", base) || (base_fd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(msg, sizeof msg, "lay in %s: %s", dest, strerror(errno));
        log_line(json, "error", msg);
        return 1;
    }
    if (join(dir, sizeof dir, base, name) != 0) {
        snprintf(msg, sizeof msg, "lay in %s: %s", dest, strerror(ENAMETOOLONG));
        log_line(json, "error", msg);
        return 1;
    }
    /* A tree this lay would write is kept (an initContainer run again). */
    int kept = 0;
    if (check_cache(base_fd, base, name, dir, t, geteuid()) == 1) {
        int fd = openat(base_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        kept = fd >= 0 && laid_at_matches(fd, dir) && missing_parts(fd, t, mask) == 0;
        if (fd >= 0)
            close(fd);
    }
    reasons[0] = 0;
    if (!kept) {
        char aside[NAME_MAX + 1];
        snprintf(aside, sizeof aside, "%s.tmp-old-%ld", name, (long)getpid());
        if (renameat(base_fd, name, base_fd, aside) == 0)
            remove_tree(base_fd, aside);
        if (install(self_fd, t, base_fd, base, name, dir, mask) != 0) {
            char *cause = strchr(reasons, ':');
            size_t len = strlen(reasons);
            if (len && reasons[len - 1] == '\n')
                reasons[len - 1] = 0;
            snprintf(msg, sizeof msg, "lay in %s: %s", dest, cause ? cause + 2 : "failed");
            log_line(json, "error", msg);
            close(base_fd);
            return 1;
        }
    }
    close(base_fd);
    struct trailer stub = *t;
    stub.laid = 1;
    stub.payload_size = 0;
    if (copy_self(self_fd, dest, &stub) != 0) {
        snprintf(msg, sizeof msg, "lay in %s: %s", dest, strerror(errno));
        log_line(json, "error", msg);
        return 1;
    }
    const char *sep = (!*dest || dest[strlen(dest) - 1] == '/') ? "" : "/";
    snprintf(msg, sizeof msg, "%s %s in %s%s%s; run %s%ssecrets-init", kept ? "kept" : "laid", part_names(t, mask),
             dest, sep, name, dest, sep);
    if (level <= 1)
        log_line(json, "info", msg);
    return 0;
}

/* ---- start ----------------------------------------------------------- */

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static char *pair(const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 2;
    char *s = malloc(len);
    if (!s)
        die("out of memory");
    snprintf(s, len, "%s=%s", name, value);
    return s;
}

/* The bootloader's environment: ours, minus what a frozen app or an outer
 * secrets-init may have left, plus what tells the bootloader it need not
 * re-exec itself and tells secrets-init which file the user ran. */
static char **boot_environment(char **envp, const char *boot)
{
    size_t n = 0;
    while (envp[n])
        n++;
    char **env = calloc(n + 6, sizeof *env);
    if (!env)
        die("out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = envp[i];
        if (has_prefix(e, "_PYI_") || has_prefix(e, "_MEIPASS2=") || has_prefix(e, "_SECRETS_INIT_"))
            continue;
        if (has_prefix(e, "LD_LIBRARY_PATH=")) {
            /* Our glibc must not pick up the image's libraries; the program
             * gets the user's value back (secrets_init.child restores it). */
            env[k++] = pair("_SECRETS_INIT_ORIG_LD_LIBRARY_PATH", e + strlen("LD_LIBRARY_PATH="));
            continue;
        }
        env[k++] = (char *)e;
    }
    env[k++] = pair("_SECRETS_INIT_LAUNCHER", self_path);
    /* PyInstaller's onedir bootloader normally sets LD_LIBRARY_PATH and
     * re-execs itself; our DT_RPATH already points at the tree, so we hand
     * it the state it would have after that restart. */
    env[k++] = pair("_PYI_ARCHIVE_FILE", boot);
    env[k++] = pair("_PYI_PARENT_PROCESS_LEVEL", "-1");
    env[k] = NULL;
    return env;
}

/* Runs the bootloader with our arguments and the user's umask; returns only
 * when execve() failed, with our umask back and errno kept for the message.
 * argv[0] is the bootloader's absolute path: without /proc, that is how it
 * finds itself. */
static void exec_boot(const char *boot, int argc, char **argv, char **envp, mode_t user_umask)
{
    char **env = boot_environment(envp, boot);
    char **boot_argv = calloc((size_t)(argc > 0 ? argc : 1) + 1, sizeof *boot_argv);
    if (!boot_argv)
        die("out of memory");
    boot_argv[0] = (char *)boot;
    for (int a = 1; a < argc; a++)
        boot_argv[a] = argv[a];
    umask(user_umask);
    execve(boot, boot_argv, env);
    int failure = errno;
    umask(077);
    free(boot_argv);
    errno = failure;
}

int main(int argc, char **argv, char **envp)
{
    /* As PID 1 we would silently drop every signal we have no handler for;
     * blocked, they stay pending across the execve() instead, and
     * secrets_init.signals keeps them blocked and takes them from the
     * kernel's queue. */
    sigset_t all, given;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &given);
    /* Our own files are private whatever umask we were given; the program
     * gets the original umask back. */
    mode_t user_umask = umask(077);
    self_path = find_self();
    int self_fd = open(self_path, O_RDONLY | O_CLOEXEC);
    if (self_fd < 0)
        die("cannot open my own executable %s: %s", self_path, strerror(errno));
    struct trailer t;
    read_trailer(self_fd, &t);
    if (argc > 1 && (strcmp(argv[1], "copy") == 0 || strcmp(argv[1], "lay") == 0)) {
        if (t.laid)
            die("%s is the launcher that `secrets-init lay` left beside its tree; run %s from the "
                "secrets-init image's own binary", self_path, argv[1]);
        /* Nothing to unpack, no PID 1 to be: signals act as they were set to. */
        sigprocmask(SIG_SETMASK, &given, NULL);
        if (strcmp(argv[1], "lay") == 0)
            return lay_command(argc, argv, self_fd, &t);
        return copy_command(argc, argv, self_fd);
    }
    unsigned needed = parts_for(&t, families_in(&t, envp));

    char self_dir[PATH_MAX];
    snprintf(self_dir, sizeof self_dir, "%s", self_path);
    char *slash = strrchr(self_dir, '/');
    if (slash == self_dir)
        slash[1] = 0;
    else if (slash)
        *slash = 0;

    if (t.laid) {
        /* The tree `lay` left beside us: run it as it is, or say what is wrong. */
        char base[PATH_MAX], name[sizeof CACHE_PREFIX + sizeof t.hash], dir[PATH_MAX], boot[PATH_MAX];
        struct stat self_st;
        snprintf(name, sizeof name, "%s%s", CACHE_PREFIX, t.hash);
        if (!realpath(self_dir, base) || join(dir, sizeof dir, base, name) != 0
            || join(boot, sizeof boot, dir, t.bootloader) != 0 || fstat(self_fd, &self_st) != 0)
            die("cannot find the tree beside %s: %s", self_path, strerror(errno ? errno : ENAMETOOLONG));
        int base_fd = open_base(base);
        if (base_fd < 0)
            die("the tree beside %s is not trusted:\n%s", self_path, reasons);
        int state = check_cache(base_fd, base, name, dir, &t, self_st.st_uid);
        if (state == 0)
            die("%s is missing: the initContainer's `secrets-init lay %s` did not run or did not finish", dir,
                base);
        if (state == -1)
            die("the tree beside %s is not trusted:\n%s", self_path, reasons);
        if (state == -2)
            die("%s is incomplete (a lay stopped mid-way, or files removed): run `secrets-init lay %s` again",
                dir, base);
        int cache = openat(base_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(base_fd);
        if (cache < 0)
            die("%s: %s", dir, strerror(errno));
        if (!laid_at_matches(cache, dir))
            die("%s was laid at another path: mount its volume at the same path in the initContainer and here",
                dir);
        unsigned present = families_in(&t, envp), missing = missing_parts(cache, &t, needed & ~CORE_PART);
        if (missing) {
            char families[MAX_FAMILIES * 17] = "";
            for (uint32_t f = 0; f < t.family_count; f++)
                if ((present & (1u << f)) && (parts_for(&t, 1u << f) & missing))
                    snprintf(families + strlen(families), sizeof families - strlen(families), " %s",
                             t.families[f].name);
            die("%s lacks %s (not laid, or incomplete), which references here need: lay it with "
                "`secrets-init lay %s%s`", dir, part_names(&t, missing), base, families);
        }
        close(cache);
        close(self_fd);
        exec_boot(boot, argc, argv, envp, user_umask);
        die("cannot execute %s: %s", boot, strerror(errno));
    }

    const char *env_base = getenv("SECRETS_INIT_CACHE");
    const char *bases[] = {env_base && *env_base ? env_base : NULL, "/tmp", "/dev/shm", "/var/tmp", "/run",
                           self_dir};
    /* One tree per user: another user's tree in a shared /tmp is no obstacle. */
    char name[sizeof CACHE_PREFIX + 16 + sizeof t.hash];
    snprintf(name, sizeof name, "%s%u-%s", CACHE_PREFIX, (unsigned)geteuid(), t.hash);

    for (size_t i = 0; i < sizeof bases / sizeof *bases; i++) {
        if (!bases[i])
            continue;
        char base[PATH_MAX], dir[PATH_MAX], boot[PATH_MAX];
        if (!realpath(bases[i], base)) {
            reject(bases[i], "%s", strerror(errno));
            continue;
        }
        if (join(dir, sizeof dir, base, name) != 0 || join(boot, sizeof boot, dir, t.bootloader) != 0) {
            reject(base, "path too long");
            continue;
        }
        int base_fd = open_base(base);
        if (base_fd < 0)
            continue;
        int state = check_cache(base_fd, base, name, dir, &t, geteuid());
        unsigned to_check = state == 1 ? needed & ~CORE_PART : needed;
        if (state == -2) {
            /* Incomplete (e.g. a tmp cleaner removed files): move it aside, unpack again. */
            char aside[NAME_MAX + 1];
            if (snprintf(aside, sizeof aside, "%s.tmp-stale-%ld", name, (long)getpid()) < (int)sizeof aside
                && renameat(base_fd, name, base_fd, aside) == 0)
                remove_tree(base_fd, aside);
            state = 0;
        }
        if (state == 0)
            state = usable_base(base) && install(self_fd, &t, base_fd, base, name, dir, needed) == 0 ? 1 : -1;
        if (state == 1) {
            /* The parts this run needs that earlier runs (or a start that
             * renamed its tree into place before ours) did not. */
            int cache = openat(base_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            unsigned missing = cache >= 0 ? missing_parts(cache, &t, to_check) : needed;
            if (cache >= 0)
                close(cache);
            if (missing && (!usable_base(base) || add_parts(self_fd, &t, base_fd, base, name, missing) != 0))
                state = -1;
        }
        close(base_fd);
        if (state == -1)
            continue;
        close(self_fd);
        exec_boot(boot, argc, argv, envp, user_umask);
        reject(base, "cannot execute %s: %s", boot, strerror(errno));
        self_fd = open(self_path, O_RDONLY | O_CLOEXEC);
        if (self_fd < 0)
            break;
    }
    fprintf(stderr,
            "secrets-init: found no writable directory that allows executables to unpack into:\n%s"
            "secrets-init: set SECRETS_INIT_CACHE to one that no other user can change "
            "(a tmpfs without noexec will do), or make /tmp writable\n",
            reasons);
    return EXIT_LAUNCHER;
}

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
 * `secrets-init copy DEST_DIR` is the one command handled here, without
 * unpacking anything: an initContainer's only writable directory may be the
 * volume it copies into, and the copy needs nothing of the Python tree.
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

#define TRAILER_MAGIC "SIBUNDL2"
#define CACHE_PREFIX ".secrets-init-"
/* packaging/pack.py's MANIFEST: every file of the tree and its size, one per
 * line as "KIND SIZE PATH" (KIND f for a file, l for a symlink). */
#define MANIFEST "secrets-init.manifest"
#define MANIFEST_MAX (1 << 20)

/* Written by packaging/pack.py; little-endian, at the very end of the file. */
struct trailer {
    char magic[8];
    uint64_t payload_offset;  /* start of the first zstd stream in this file */
    uint64_t payload_size;    /* length of both streams */
    uint64_t second_offset;   /* start of the second stream, relative to the first */
    uint64_t interp_offset;   /* PT_INTERP placeholder, offset in the bootloader file */
    uint64_t rpath_offset;    /* DT_RPATH placeholder, offset in the bootloader file */
    uint32_t interp_capacity; /* bytes available there, including the NUL */
    uint32_t rpath_capacity;
    char hash[32];            /* content hash, hex, NUL-padded: names the cache dir */
    char bootloader[64];      /* tree-relative paths, NUL-padded */
    char interp[64];
    char libdir[64];
};

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
    if (t->payload_offset + t->payload_size > (uint64_t)end - sizeof *t || t->second_offset > t->payload_size)
        die("%s is truncated", self_path);
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

/* 1 if every file and symlink the tree's manifest lists is in `cache` with
 * its size. A /tmp cleaner removes files it thinks unused (an extension
 * module the last runs did not import), so the bootloader alone says little;
 * a hundred fstatat() calls cost well under a millisecond. */
static int complete(int cache)
{
    int fd = openat(cache, MANIFEST, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
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

/* A cache directory found by name is ours only if we made it: a directory
 * (not a symlink) owned by us, writable by nobody else, on an exec mount,
 * holding a bootloader we own and every file of the tree. Returns 1 trusted,
 * 0 absent, -1 refused, -2 present but incomplete (safe to replace). */
static int check_cache(int base_fd, const char *base, const char *name, const char *dir,
                       const struct trailer *t)
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
        else if (st.st_uid != geteuid())
            reject(base, "%s is owned by uid %u, not by us; not trusted", dir, (unsigned)st.st_uid);
        else
            reject(base, "%s: %s", dir, strerror(saved));
        return -1;
    }
    int state = -1;
    if (fstat(fd, &st) != 0) {
        reject(base, "%s: %s", dir, strerror(errno));
    } else if (st.st_uid != geteuid()) {
        reject(base, "%s is owned by uid %u, not by us; not trusted", dir, (unsigned)st.st_uid);
    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        reject(base, "%s is writable by others; not trusted", dir);
    } else if (fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_NOEXEC)) {
        reject(base, "mounted noexec");
    } else if (fstatat(fd, t->bootloader, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)
               || st.st_uid != geteuid() || !complete(fd)) {
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
        if (h.kind == REC_DIR) {
            if (mkdirat(root, path, 0700) != 0 && errno != EEXIST)
                goto out;
        } else if (h.kind == REC_FILE) {
            int fd = openat(root, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
            if (fd < 0)
                goto out;
            if (take(&s, NULL, h.size, fd) != 0) {
                int saved = errno;
                close(fd);
                errno = saved ? saved : EIO;
                goto out;
            }
            if (close(fd) != 0)
                goto out;
        } else if (h.kind == REC_LINK) {
            char target[PATH_MAX];
            if (h.size == 0 || h.size >= sizeof target || take(&s, target, h.size, -1) != 0)
                goto corrupt;
            target[h.size] = 0;
            if (target[0] == '/' || symlinkat(target, root, path) != 0)
                goto corrupt;
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

/* The tree is packed as two streams of about equal size (each with every
 * directory), so that a second process can decompress one while we do the
 * other: decompression is most of a first start's time. */
static int unpack(int self_fd, const struct trailer *t, int root)
{
    uint64_t first = t->second_offset ? t->second_offset : t->payload_size;
    uint64_t second_at = t->payload_offset + first, second = t->payload_size - first;
    pid_t helper = second ? fork() : -1;
    if (helper == 0) {
        int fd = open(self_path, O_RDONLY | O_CLOEXEC);
        _exit(fd >= 0 && unpack_stream(fd, second_at, second, root) == 0 ? 0 : (errno ? errno : EIO) & 0x7f);
    }
    int rc = unpack_stream(self_fd, t->payload_offset, first, root);
    int saved = errno;
    if (second && helper < 0 && rc == 0) {
        /* No second process to be had: do it ourselves. */
        rc = unpack_stream(self_fd, second_at, second, root);
        saved = errno;
    }
    if (helper > 0) {
        int status;
        while (waitpid(helper, &status, 0) < 0 && errno == EINTR)
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

/* Remove unpack directories left by a start that was killed mid-way: an
 * unpacker holds a lock on its directory, so an old one we can lock is abandoned. */
static void remove_abandoned(int base_fd, const char *stem)
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
        /* An unpack takes well under a second; a minute-old unlocked one is dead. */
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && st.st_mtime < time(NULL) - 60
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
                   const char *dir)
{
    char tmp[NAME_MAX + 1];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld-%lx", name, (long)getpid(), (unsigned long)now.tv_nsec)
        >= (int)sizeof tmp) {
        reject(base, "path too long");
        return -1;
    }
    remove_abandoned(base_fd, name);
    if (mkdirat(base_fd, tmp, 0700) != 0) {
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
    if (unpack(self_fd, t, root) != 0 || patch_bootloader(root, dir, t) != 0) {
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
        if (check_cache(base_fd, base, name, dir, t) == 1)
            return 0;
        reject(base, "cannot rename into place: %s", strerror(saved));
        return -1;
    }
    close(root);
    return 0;
}

/* ---- copy DEST_DIR --------------------------------------------------- */

/* secrets_init.config.USAGE, which a test keeps this equal to. */
static const char USAGE[] = "usage: secrets-init [OPTIONS] [--] COMMAND [ARG...]\n"
                            "       secrets-init copy DEST_DIR\n"
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
static int copy_self(int self_fd, const char *dest)
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
    for (off_t at = 0;;) {
        ssize_t n = pread(self_fd, buf, sizeof buf, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || write_all(fd, buf, (size_t)n) != 0)
            goto fail_file;
        if (n == 0)
            break;
        at += n;
    }
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
    if (copy_self(self_fd, dest) != 0) {
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

int main(int argc, char **argv, char **envp)
{
    /* As PID 1 we would silently drop every signal until secrets-init has
     * installed its handlers; blocked, they stay pending across the execve()
     * instead, and secrets_init.signals unblocks them once it can act. */
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
    if (argc > 1 && strcmp(argv[1], "copy") == 0) {
        /* Nothing to unpack, no PID 1 to be: signals act as they were set to. */
        sigprocmask(SIG_SETMASK, &given, NULL);
        return copy_command(argc, argv, self_fd);
    }

    char self_dir[PATH_MAX];
    snprintf(self_dir, sizeof self_dir, "%s", self_path);
    char *slash = strrchr(self_dir, '/');
    if (slash == self_dir)
        slash[1] = 0;
    else if (slash)
        *slash = 0;

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
        int state = check_cache(base_fd, base, name, dir, &t);
        if (state == -2) {
            /* Incomplete (e.g. a tmp cleaner removed files): move it aside, unpack again. */
            char aside[NAME_MAX + 1];
            if (snprintf(aside, sizeof aside, "%s.tmp-stale-%ld", name, (long)getpid()) < (int)sizeof aside
                && renameat(base_fd, name, base_fd, aside) == 0)
                remove_tree(base_fd, aside);
            state = 0;
        }
        if (state == 0 && (!usable_base(base) || install(self_fd, &t, base_fd, base, name, dir) != 0))
            state = -1;
        close(base_fd);
        if (state == -1)
            continue;
        close(self_fd);
        char **env = boot_environment(envp, boot);
        /* argv[0] is the bootloader's absolute path: without /proc, that is how it finds itself. */
        char **boot_argv = calloc((size_t)(argc > 0 ? argc : 1) + 1, sizeof *boot_argv);
        if (!boot_argv)
            die("out of memory");
        boot_argv[0] = boot;
        for (int a = 1; a < argc; a++)
            boot_argv[a] = argv[a];
        umask(user_umask);
        execve(boot, boot_argv, env);
        umask(077);
        free(boot_argv);
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

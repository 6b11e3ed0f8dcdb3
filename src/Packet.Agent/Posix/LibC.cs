using System.Runtime.InteropServices;

namespace Packet.Agent.Posix;

/// <summary>
/// The few libc calls Mono.Posix does not wrap. Bound at link time (DirectPInvoke), so each stays
/// within the glibc 2.31 floor: copy_file_range 2.27, renameat2 2.28, getdents64 2.30.
/// </summary>
internal static unsafe partial class LibC
{
    internal const int SEEK_DATA = 3;
    internal const int SEEK_HOLE = 4;
    internal const int LOCK_EX = 2;
    internal const int LOCK_NB = 4;
    internal const int LOCK_UN = 8;
    internal const uint RENAME_NOREPLACE = 1;
    internal const int F_GETFD = 1;
    internal const int F_SETFD = 2;
    internal const int FD_CLOEXEC = 1;
    internal const int RLIMIT_NOFILE = 7;
    internal const int SIG_SETMASK = 2;
    internal const int SIGPIPE = 13;
    internal const int SIGXFSZ = 25;
    internal const int AT_EACCESS = 0x200;
    internal const uint SYNC_FILE_RANGE_WRITE = 2;

    /// <summary>struct statfs of 64-bit Linux (x86_64 and the generic layout alike: every field a long).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct StatFs
    {
        public long Type;
        public long BlockSize;
        public ulong Blocks;
        public ulong BlocksFree;
        public ulong BlocksAvailable;
        public ulong Files;
        public ulong FilesFree;
        public ulong FileSystemId;
        public long NameLength;
        public long FragmentSize;
        public long Flags;
        public long Spare0;
        public long Spare1;
        public long Spare2;
        public long Spare3;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint copy_file_range(int fdIn, long* offIn, int fdOut, long* offOut, nuint length, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint sendfile(int outFd, int inFd, long* offset, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial long lseek(int fd, long offset, int whence);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint getdents64(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int renameat2(int oldDirFd, byte* oldName, int newDirFd, byte* newName, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int flock(int fd, int operation);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int syncfs(int fd);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int fstatfs(int fd, StatFs* buffer);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int sync_file_range(int fd, long offset, long nbytes, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int fcntl(int fd, int command, int argument);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int getrlimit(int resource, RLimit* limit);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int kill(int pid, int signal);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int faccessat(int dirFd, byte* name, int mode, int flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint signal(int signal, nint handler);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int sigprocmask(int how, byte* set, byte* oldSet);

    /// <summary>realpath(3) into a buffer it allocates (free it with <see cref="free"/>); 0 on failure.</summary>
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint realpath(string path, nint resolved);

    [LibraryImport("libc")]
    internal static partial void free(nint pointer);

    internal static int LastErrno() => Marshal.GetLastPInvokeError();
}

using Mono.Unix;
using Mono.Unix.Native;

namespace Packet.Agent.Posix;

/// <summary>A failed system call, with what was attempted and on which path: what an operator needs to act.</summary>
public sealed class PosixException : IOException
{
    public PosixException(string operation, string path, Errno errno)
        : base($"{operation} {NativeName.Display(path)}: {Describe(errno)}")
    {
        Operation = operation;
        PathName = path;
        Errno = errno;
    }

    public PosixException()
        : this("operation", string.Empty, 0)
    {
    }

    public PosixException(string message)
        : base(message)
    {
        Operation = string.Empty;
        PathName = string.Empty;
    }

    public PosixException(string message, Exception innerException)
        : base(message, innerException)
    {
        Operation = string.Empty;
        PathName = string.Empty;
    }

    public string Operation { get; }

    public string PathName { get; }

    public Errno Errno { get; }

    /// <summary>"Permission denied (EACCES)": the text for people, the symbol for searching.</summary>
    public static string Describe(Errno errno) => $"{UnixMarshal.GetErrorDescription(errno)} ({errno})";

    public static Errno ErrnoOf(long result) => (Errno)(int)(-result);

    /// <summary>Throws for a negative (errno) result; returns a non-negative one.</summary>
    public static int Check(int result, string operation, string path) =>
        result >= 0 ? result : throw new PosixException(operation, path, ErrnoOf(result));

    public static long Check(long result, string operation, string path) =>
        result >= 0 ? result : throw new PosixException(operation, path, ErrnoOf(result));
}

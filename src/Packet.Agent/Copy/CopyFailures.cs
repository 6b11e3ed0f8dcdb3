using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>
/// The destination cannot take more (full, over quota, read-only, I/O error): continuing would only
/// produce more failures, so the whole copy stops and the seed is reported as failed.
/// </summary>
public sealed class DestinationWriteException : Exception
{
    public DestinationWriteException(string operation, string path, Errno errno)
        : base($"{operation} {NativeName.Display(path)} in the workspace: {PosixException.Describe(errno)}")
    {
        Errno = errno;
    }

    public DestinationWriteException()
    {
    }

    public DestinationWriteException(string message)
        : base(message)
    {
    }

    public DestinationWriteException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public Errno Errno { get; }

    public bool OutOfSpace => ErrnoMeaning.OutOfSpace(Errno);
}

/// <summary>Reading one source entry failed; that entry is left out and the copy goes on.</summary>
internal sealed class SourceReadException(Errno errno) : Exception(PosixException.Describe(errno))
{
    public Errno Errno { get; } = errno;
}

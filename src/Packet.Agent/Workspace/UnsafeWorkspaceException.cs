using Packet.Agent.Posix;

namespace Packet.Agent.Workspace;

/// <summary>Something in the workspace is not what the agent may safely touch: a symlink, or the wrong kind of file.</summary>
public sealed class UnsafeWorkspaceException : IOException
{
    public UnsafeWorkspaceException(string path, string reason)
        : base($"refusing {NativeName.Display(path)}: {reason}")
    {
    }

    public UnsafeWorkspaceException()
    {
    }

    public UnsafeWorkspaceException(string message)
        : base(message)
    {
    }

    public UnsafeWorkspaceException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

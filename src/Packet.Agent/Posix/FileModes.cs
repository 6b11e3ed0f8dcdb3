using Mono.Unix.Native;

namespace Packet.Agent.Posix;

/// <summary>The modes the agent gives what it makes, each declared once.</summary>
public static class FileModes
{
    /// <summary>rw-r--r--: reports, the marker, a new .bashrc, logs, state records.</summary>
    public const FilePermissions Readable = FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IRGRP | FilePermissions.S_IROTH;

    /// <summary>rw-------: keys, sshd's config, the pod's recorded environment.</summary>
    public const FilePermissions Private = FilePermissions.S_IRUSR | FilePermissions.S_IWUSR;

    /// <summary>rwxr-xr-x: the agent's directories on the volume (its state, bin, the hook folders), readable by all.</summary>
    public const FilePermissions Directory = FilePermissions.S_IRWXU | FilePermissions.S_IRGRP | FilePermissions.S_IXGRP | FilePermissions.S_IROTH | FilePermissions.S_IXOTH;

    /// <summary>rwx------: staging, ~/.ssh, host keys, the runtime directory's private parts.</summary>
    public const FilePermissions PrivateDirectory = FilePermissions.S_IRWXU;

    /// <summary>openat and friends: a name relative to the working directory (or absolute).</summary>
    public const int AtCurrentDirectory = -100;
}

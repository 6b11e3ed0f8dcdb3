using Mono.Unix.Native;

namespace Packet.Agent.Workspace;

/// <summary>The names the agent keeps on the volume (README, "What the agent keeps on the volume").</summary>
public static class WorkspaceLayout
{
    /// <summary>rwxr-xr-x: the agent's directories on the volume (its state, bin, the hook folders), readable by all.</summary>
    public const FilePermissions DirectoryMode = FilePermissions.S_IRWXU | FilePermissions.S_IRGRP | FilePermissions.S_IXGRP | FilePermissions.S_IROTH | FilePermissions.S_IXOTH;

    /// <summary>The persisted home, <c>/workspace/home</c>.</summary>
    public const string Home = "home";

    /// <summary>The marker inside the persisted home; the bash script used the same name and place.</summary>
    public const string Marker = ".packet-init";

    /// <summary><c>/workspace/bin</c>, put on PATH by the managed block.</summary>
    public const string Bin = "bin";

    /// <summary>The agent's own state: lock, staging, reports.</summary>
    public const string State = ".packet";

    public const string Lock = "lock";

    /// <summary>Where a seed is copied before it is moved into place; a crash leaves it here to resume.</summary>
    public const string Staging = "staging";

    public const string ShellProfile = ".bashrc";

    /// <summary>In staging/ while a seed is copied straight into <c>/workspace/home</c> (on volumes that cannot move a directory whole).</summary>
    public const string InPlaceNote = "home-in-place";
}

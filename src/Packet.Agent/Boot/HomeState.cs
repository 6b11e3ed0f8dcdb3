using Packet.Agent.Copy;
using Packet.Agent.Workspace;

namespace Packet.Agent.Boot;

/// <summary>Where the persisted home stands.</summary>
public enum HomeStatus
{
    /// <summary>Not seeded: no marker, and no complete copy this boot.</summary>
    NotSeeded,

    /// <summary>Seeded and marked (now or by an earlier boot).</summary>
    Seeded,

    /// <summary>Copied whole this boot, not yet marked.</summary>
    Copied,

    /// <summary>A dry run: the seed would make it; the steps after plan as if it had.</summary>
    WillBeSeeded,
}

/// <summary>
/// What the seed step hands on, and the marker step after it: the open workspace, where the home
/// stands, the copy's report when it was copied now, and the workspace lock when the seed took it
/// (held through the marker and profile steps, released by the sequence).
/// </summary>
public sealed record HomeState(DirectoryHandle Workspace, HomeStatus Status, CopyReport? Copied = null, WorkspaceLock? Lock = null)
{
    /// <summary>The home is seeded and marked, or in a dry run would be: the profile and the live home rely on it.</summary>
    public bool Ready => Status is HomeStatus.Seeded or HomeStatus.WillBeSeeded;
}

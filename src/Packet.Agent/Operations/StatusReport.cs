using Packet.Agent.Boot;
using Packet.Agent.Home;

namespace Packet.Agent.Operations;

/// <summary>The volume: is it there, is it a mount (else nothing persists), which file system, how full.</summary>
public sealed record WorkspaceInfo(string Path, bool Present, bool MountPoint, string? FileSystem, long? FreeBytes, long? TotalBytes);

/// <summary>The persisted home: seeded (and by whom), and whether its .bashrc has the workspace block.</summary>
public sealed record HomeInfo(string Path, bool Seeded, bool LegacyMarker, MarkerBody? Marker, bool ProfileBlock, bool LegacyProfileLines);

/// <summary>The live home: linked to the persisted one, the persisted one itself (mounted), or neither.</summary>
public sealed record LiveHomeInfo(string Path, string State, string? Target);

/// <summary>What the last boot's SSH step set up, and whether its sshd is still running.</summary>
public sealed record SshInfo(int Port, string HostKeyFingerprint, int Keys, bool HostKeysPersisted, int? Pid, bool Running, string Log, string? ListenAddress = null);

/// <summary>
/// <c>packet-agent status --json</c>. Stable snake_case fields; fields may be added, none renamed.
/// <paramref name="LastBootUnreadable"/> says why a report that exists could not be read.
/// </summary>
/// <paramref name="LastBootPath"/> is where the last boot's report was read: on the volume, or in the container's runtime directory when the volume could not take it.
public sealed record StatusReport(WorkspaceInfo Workspace, HomeInfo Home, LiveHomeInfo LiveHome, BootReport? LastBoot, IReadOnlyList<string> Attention, string? LastBootUnreadable = null, SshInfo? Ssh = null, string? LastBootPath = null);

using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Home;
using Packet.Agent.Posix;
using Packet.Agent.Profile;
using Packet.Agent.Ssh;
using Packet.Agent.Workspace;

namespace Packet.Agent.Operations;

/// <summary>
/// Gathers <c>packet-agent status</c>: read only, from the workspace's own files (marker, .bashrc,
/// last boot report), the mount table and statvfs. Every finding an operator should act on is
/// listed under "attention"; none means healthy. Inside the workspace it reads as the boot does,
/// through descriptors without following links, so status reports what the boot would find.
/// </summary>
/// <remarks>
/// "Writable" is whether the user running status may write there (faccessat), which is what an
/// agent running as that user could do.
/// </remarks>
public sealed class WorkspaceStatus(IPosix posix, Func<string, MountFacts> mounts)
{
    private const int MaxFileBytes = 1 << 20;

    /// <param name="workspacePath">The workspace, its links resolved.</param>
    /// <param name="liveHome">The live home.</param>
    /// <param name="aside">The newest report a boot of this workspace kept in the container's runtime directory, when the volume could not take it.</param>
    public StatusReport Gather(string workspacePath, string liveHome, AsideReport? aside = null)
    {
        var attention = new List<string>();
        using var handle = OpenWorkspace(workspacePath);
        bool present = handle is not null;
        var mount = present ? mounts(workspacePath) : default;
        (long Free, long Total)? room = handle is not null && posix.FStatVfs(handle.Fd, out var volume) == 0
            ? ((long)(volume.f_bavail * volume.f_frsize), (long)(volume.f_blocks * volume.f_frsize))
            : null;
        var workspace = new WorkspaceInfo(workspacePath, present, mount.MountPoint, mount.FileSystem, room?.Free, room?.Total);
        if (!present)
        {
            attention.Add($"{workspacePath} does not exist: no volume is mounted, nothing persists");
        }
        else if (!mount.MountPoint)
        {
            attention.Add($"{workspacePath} is not a mount point: it is the container's own directory, and will not survive a restart");
        }

        string persisted = Path.Join(workspacePath, WorkspaceLayout.Home);
        var home = Home(handle, persisted, attention);
        using var rootState = TryOpenState(handle, StateFolder.TryOpenShared, attention);
        using var ownState = posix.EffectiveUserId == 0 ? null : TryOpenState(handle, StateFolder.TryOpenOwn, attention);
        var (lastBoot, unreadable, state) = NewestReport(ownState, rootState);
        string? lastBootPath = lastBoot is null ? null : state!.PathOf(WorkspaceLayout.Report);
        if (aside is not null && (lastBoot is null || aside.Report.StartedAt > lastBoot.StartedAt))
        {
            (lastBoot, unreadable, lastBootPath) = (aside.Report, null, aside.Path);
            attention.Add($"the last boot's report is not on the volume ({aside.Report.KeptAside}): it is kept in {aside.Path}, for as long as this container runs");
        }

        uint userId = posix.EffectiveUserId;
        string? locked = handle is not null && userId != 0 ? FirstUnwritable(handle) : null;
        if (locked is not null)
        {
            attention.Add($"{locked} is not writable by uid {userId}: an agent running as this user can neither seed nor keep the home there (give the volume to the user: the pod's securityContext.fsGroup, a root init container, or chown)");
        }

        if (present)
        {
            HomeAttention(home, persisted, lastBoot, locked is null ? null : userId, attention);
        }

        var live = LiveHome(liveHome, persisted);
        if (present && home.Seeded && live.State == "not wired")
        {
            attention.Add($"{liveHome} is not the persisted home: shells that start there do not see it (see --link-home)");
        }

        LastBootAttention(lastBoot, unreadable, state, attention);
        var ssh = Ssh(rootState);

        // An sshd that is gone matters only when the last boot meant it to run: a boot that started
        // none (no key to let in, --ssh off) leaves an earlier container's record behind.
        if (ssh is { Running: false } && Step(lastBoot, StepId.Ssh) is null or { Outcome: not StepOutcome.Skipped })
        {
            attention.Add($"sshd (pid {ssh.Pid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown"}) is not running: SSH logins fail until the next boot starts it (log: {ssh.Log})");
        }

        return new StatusReport(workspace, home, live, lastBoot, attention, unreadable, ssh, lastBootPath);
    }

    /// <summary>
    /// The home: not seeded (and why, and whether this user could: <paramref name="lockedFor"/> is
    /// the uid the volume is not writable for, when it is not), not kept whole by the volume, no workspace block.
    /// </summary>
    private static void HomeAttention(HomeInfo home, string persisted, BootReport? lastBoot, uint? lockedFor, List<string> attention)
    {
        if (!home.Seeded)
        {
            attention.Add(Step(lastBoot, StepId.Seed) is { Outcome: StepOutcome.Warning or StepOutcome.Failed } seed
                ? $"{persisted} is not seeded (no {WorkspaceLayout.Marker}): the last boot could not seed it ({seed.Summary})"
                : lockedFor is { } userId
                    ? $"{persisted} is not seeded (no {WorkspaceLayout.Marker}), and cannot be by uid {userId}"
                    : $"{persisted} is not seeded (no {WorkspaceLayout.Marker}); the next boot seeds it");
        }
        else if (home.Marker?.NotPreserved is { Count: > 0 } losses)
        {
            attention.Add($"the volume did not keep all of the home when it was seeded ({string.Join(", ", losses.Keys.Select(k => k.Replace('_', ' ')))}; see \"not kept\"): cp -a loses the same there; a volume such as ext4 or xfs keeps them");
        }

        if (home.Seeded && !home.ProfileBlock)
        {
            attention.Add(Step(lastBoot, StepId.Profile) is { Outcome: StepOutcome.Warning or StepOutcome.Failed } profile
                ? $"{Path.Join(persisted, WorkspaceLayout.ShellProfile)} has no workspace block: the last boot could not add it ({profile.Summary})"
                : $"{Path.Join(persisted, WorkspaceLayout.ShellProfile)} has no workspace block; the next boot adds it");
        }
    }

    /// <summary>
    /// The last boot's report, and the folder it was read from: this user's own agent's; for a user
    /// that is not root, root's too (the init container's), when root's is newer. Reports are read
    /// only from state folders another account cannot write, so none can be forged.
    /// </summary>
    private static (BootReport? Report, string? Unreadable, DirectoryHandle? State) NewestReport(DirectoryHandle? ownState, DirectoryHandle? rootState)
    {
        var state = ownState ?? rootState;
        var (lastBoot, unreadable) = Report(state, WorkspaceLayout.Report);
        return ownState is not null && Report(rootState, WorkspaceLayout.Report, ownedByRoot: true) is ({ } rootBoot, _) && (lastBoot is null || rootBoot.StartedAt > lastBoot.StartedAt)
            ? (rootBoot, null, rootState)
            : (lastBoot, unreadable, state);
    }

    /// <summary>The last boot: a report that cannot be read, or one that did not end ok (and how many in a row ended the same way).</summary>
    private static void LastBootAttention(BootReport? lastBoot, string? unreadable, DirectoryHandle? state, List<string> attention)
    {
        if (unreadable is not null)
        {
            attention.Add($"the last boot's report cannot be read ({unreadable})");
        }
        else if (lastBoot is { Outcome: not BootEnding.Ok })
        {
            int times = SameOutcomeStreak(lastBoot, state!);
            string how = lastBoot.Outcome switch { BootEnding.Failed => "failed", BootEnding.Stopped => "were stopped", _ => "had warnings" };
            attention.Add(times > 1
                ? $"the last {times} boots {how} the same way: {string.Join("; ", lastBoot.Warnings)}"
                : $"the last boot {(lastBoot.Outcome == BootEnding.Stopped ? "was stopped" : how)}: {string.Join("; ", lastBoot.Warnings)}");
        }
    }

    private static StepReport? Step(BootReport? report, StepId step) => report?.Steps.FirstOrDefault(s => s.Name == step.Name);

    /// <summary>As the guard sees it (<see cref="StateFolder.FirstUnwritable"/>): the first of what this user keeps that it may not write.</summary>
    private string? FirstUnwritable(DirectoryHandle workspace) =>
        StateFolder.FirstUnwritable(posix, workspace) is var (name, _) ? (name == "." ? workspace.Path : workspace.PathOf(name)) : null;

    /// <summary>How many boots in a row, newest first, ended as the last one did with the same warnings (the kept history is four).</summary>
    private static int SameOutcomeStreak(BootReport last, DirectoryHandle state)
    {
        int times = 1;
        for (int generation = 1; generation <= WorkspaceLayout.PreviousReportsKept; generation++)
        {
            var (earlier, _) = Report(state, WorkspaceLayout.PreviousReport(generation));
            if (earlier is null || earlier.Outcome != last.Outcome || !earlier.Warnings.SequenceEqual(last.Warnings))
            {
                break;
            }

            times++;
        }

        return times;
    }

    /// <summary>The report for people: one line per subject, the attention list last.</summary>
    public static string Render(StatusReport report)
    {
        var text = new StringBuilder();
        void Line(string subject, string detail) => text.Append(subject.PadRight(11)).Append(detail).Append('\n');

        var w = report.Workspace;
        Line("workspace", !w.Present ? $"{w.Path}: missing"
            : $"{w.Path}: {(w.MountPoint ? $"mounted ({w.FileSystem ?? "unknown file system"})" : "not a mount point")}"
              + (w.FreeBytes is { } free && w.TotalBytes is { } total ? $", {Units.Bytes(free)} free of {Units.Bytes(total)}" : string.Empty));
        var h = report.Home;
        Line("home", !h.Seeded ? $"{h.Path}: not seeded"
            : h.Marker is { } marker ? $"{h.Path}: seeded {marker.SeededAt:yyyy-MM-dd HH:mm} UTC by {marker.Agent} {marker.AgentVersion} ({Units.Entries(marker.Copied.Entries)}, {(marker.Copied.BytesOnDisk > 0 ? Units.Size(marker.Copied.BytesOnDisk, marker.Copied.Bytes) : Units.Bytes(marker.Copied.Bytes))})"
            : $"{h.Path}: seeded{(h.LegacyMarker ? " (by the bash script: empty marker)" : string.Empty)}");
        if (h.Marker?.NotPreserved is { Count: > 0 } lost)
        {
            Line("not kept", NotPreserved(lost));
        }

        Line("profile", h.ProfileBlock ? "workspace block present" : h.LegacyProfileLines ? "the bash script's PATH lines (the next boot replaces them with the block)" : "no workspace block");
        var l = report.LiveHome;
        Line("live home", l.Target is { } target ? $"{l.Path} -> {target} ({l.State})" : $"{l.Path}: {l.State}");
        if (report.Ssh is { } ssh)
        {
            Line("ssh", $"{(ssh.ListenAddress is { } address ? $"{address} " : string.Empty)}port {ssh.Port}, host key {ssh.HostKeyFingerprint} ({(ssh.HostKeysPersisted ? "kept on the volume" : "temporary")}), {Units.Count(ssh.Keys)} key{(ssh.Keys == 1 ? string.Empty : "s")} from the pod, "
                + (ssh.Running ? $"sshd running (pid {ssh.Pid})" : "sshd not running"));
        }

        if (report.LastBootUnreadable is { } unreadable)
        {
            Line("last boot", $"report unreadable: {unreadable}");
        }
        else if (report.LastBoot is { } boot)
        {
            Line("last boot", $"{boot.StartedAt:yyyy-MM-dd HH:mm:ss} UTC, {BootReportJson.WireName(boot.Outcome)} in {boot.DurationSeconds:0.###} s, exit {boot.ExitCode}, agent {boot.AgentVersion}" + (boot.ImageVersion is { } image ? $", image {image}" : string.Empty)
                + (boot.KeptAside is not null ? $" (report in {report.LastBootPath}: not on the volume)" : string.Empty));
            Line("gpus", boot.Gpus.Count == 0 ? "none seen by the last boot" : string.Join("; ", boot.Gpus.Select(g => $"{g.Index}: {g.Name}, {g.MemoryUsedMib}/{g.MemoryTotalMib} MiB, driver {g.DriverVersion}")));
        }
        else
        {
            Line("last boot", "no report (the agent has not booted on this workspace)");
        }

        if (report.Attention.Count == 0)
        {
            Line("attention", "none");
        }
        else
        {
            foreach (string item in report.Attention)
            {
                Line(item == report.Attention[0] ? "attention" : string.Empty, "- " + item);
            }
        }

        return text.ToString();
    }

    private static string NotPreserved(IReadOnlyDictionary<string, MarkerLoss> losses) =>
        string.Join("; ", losses.Select(l => $"{l.Key.Replace('_', ' ')}: {Units.Count(l.Value.Count)} (e.g. {l.Value.Example}: {l.Value.Reason})"));

    /// <summary>The workspace directory (links in its path followed, as the boot follows them); null when it is not there.</summary>
    private DirectoryHandle? OpenWorkspace(string path)
    {
        try
        {
            return DirectoryHandle.Open(posix, path);
        }
        catch (PosixException e) when (e.Errno is Errno.ENOENT or Errno.ENOTDIR)
        {
            return null;
        }
    }

    /// <summary>A directory of the workspace, not through a link; null when absent, and why when it cannot be opened.</summary>
    private static DirectoryHandle? TryOpen(DirectoryHandle? parent, string name, List<string> attention)
    {
        try
        {
            return parent?.TryOpenDirectory(name);
        }
        catch (IOException e)
        {
            attention.Add($"status could not look inside: {e.Message}");
            return null;
        }
    }

    /// <summary>A folder of the agent's state, checked as the boot checks it; null when absent, and why (once) when it cannot be trusted.</summary>
    private DirectoryHandle? TryOpenState(DirectoryHandle? workspace, Func<IPosix, DirectoryHandle, DirectoryHandle?> open, List<string> attention)
    {
        try
        {
            return workspace is null ? null : open(posix, workspace);
        }
        catch (IOException e)
        {
            string said = $"status could not look inside: {e.Message}";
            if (!attention.Contains(said))
            {
                attention.Add(said);
            }

            return null;
        }
    }

    private static HomeInfo Home(DirectoryHandle? workspace, string persisted, List<string> attention)
    {
        using var home = TryOpen(workspace, WorkspaceLayout.Home, attention);
        bool seeded = home?.Exists(WorkspaceLayout.Marker) == true;
        MarkerBody? marker = null;
        bool legacy = false;
        if (seeded && ReadText(home!, WorkspaceLayout.Marker, attention) is { } body)
        {
            legacy = body.Trim().Length == 0;
            marker = legacy ? null : TryParse(body, HomeJson.Default.MarkerBody);
        }

        string profile = home is null ? string.Empty : ReadText(home, WorkspaceLayout.ShellProfile, attention) ?? string.Empty;
        var lines = profile.Split('\n').Select(line => line.TrimEnd()).ToArray();
        return new HomeInfo(persisted, seeded, legacy, marker, lines.Contains(ManagedBlock.Start), lines.Contains(ManagedBlock.LegacyMarker));
    }

    /// <summary>A file's text; null when it is missing, or (said under attention) when it cannot be read.</summary>
    private static string? ReadText(DirectoryHandle directory, string name, List<string> attention)
    {
        try
        {
            return directory.ReadFile(name, MaxFileBytes, out _) is { } bytes ? Encoding.UTF8.GetString(bytes) : null;
        }
        catch (IOException e)
        {
            attention.Add($"status could not read: {e.Message}");
            return null;
        }
    }

    /// <summary>The live home is outside the workspace; lstat tells a link from the directory itself.</summary>
    private LiveHomeInfo LiveHome(string liveHome, string persisted)
    {
        if (posix.LStatAt(FileModes.AtCurrentDirectory, liveHome, out var stat) < 0)
        {
            return new LiveHomeInfo(liveHome, "missing", null);
        }

        if ((stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFLNK && posix.ReadLinkAt(FileModes.AtCurrentDirectory, liveHome, out string target) >= 0)
        {
            return new LiveHomeInfo(liveHome, target == persisted ? "linked" : "a link elsewhere", target);
        }

        return new LiveHomeInfo(liveHome, liveHome == persisted || mounts(liveHome).MountPoint ? "mounted" : "not wired", null);
    }

    /// <summary>The SSH step's record, when the last boot started sshd; whether that sshd still runs (a signal 0 to its pid).</summary>
    private SshInfo? Ssh(DirectoryHandle? state)
    {
        try
        {
            if (state?.ReadFile(WorkspaceLayout.SshState, MaxFileBytes, out _) is not { } bytes
                || JsonSerializer.Deserialize(bytes, SshJson.Default.SshState) is not { } recorded)
            {
                return null;
            }

            bool running = recorded.Pid is { } pid && posix.Kill(pid, 0) == 0;
            return new SshInfo(recorded.Port, recorded.HostKeyFingerprint, recorded.Keys, recorded.HostKeysPersisted, recorded.Pid, running, recorded.Log, recorded.ListenAddress);
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return null;
        }
    }

    /// <summary>A boot report: null when there is none, or null and why when it cannot be read or parsed; with <paramref name="ownedByRoot"/>, only a report root wrote.</summary>
    private static (BootReport? Report, string? Unreadable) Report(DirectoryHandle? state, string name, bool ownedByRoot = false)
    {
        if (state is null)
        {
            return (null, null);
        }

        string path = state.PathOf(name);
        try
        {
            if (state.ReadFile(name, MaxFileBytes, out var written) is not { } bytes || (ownedByRoot && written.st_uid != 0))
            {
                return (null, null);
            }

            // Fields a report always has: a JSON object without them is not one (a truncated write, say).
            return JsonSerializer.Deserialize(bytes, BootJson.Default.BootReport) is { Steps: not null, Warnings: not null, Gpus: not null } report
                ? (report, null)
                : (null, $"{path} is not a boot report");
        }
        catch (IOException e)
        {
            return (null, $"{path}: {e.Message}");
        }
        catch (JsonException e)
        {
            return (null, $"{path} is not a boot report: {e.Message}");
        }
    }

    private static T? TryParse<T>(string json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
        where T : class
    {
        try
        {
            return JsonSerializer.Deserialize(json, type);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}


/// <summary>Source-generated serialization of <c>status --json</c>.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(StatusReport))]
public sealed partial class StatusJson : JsonSerializerContext;

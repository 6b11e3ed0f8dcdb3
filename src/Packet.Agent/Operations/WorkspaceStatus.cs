using System.IO.Abstractions;
using System.Text;
using System.Text.Json;
using Packet.Agent.Json;
using Packet.Agent.Profile;
using Packet.Agent.Workspace;

namespace Packet.Agent.Operations;

/// <summary>The volume: is it there, is it a mount (else nothing persists), which file system, how full.</summary>
public sealed record WorkspaceInfo(string Path, bool Present, bool MountPoint, string? FileSystem, long? FreeBytes, long? TotalBytes);

/// <summary>The persisted home: seeded (and by whom), and whether its .bashrc has the workspace block.</summary>
public sealed record HomeInfo(string Path, bool Seeded, bool LegacyMarker, MarkerBody? Marker, bool ProfileBlock, bool LegacyProfileLines);

/// <summary>The live home: linked to the persisted one, the persisted one itself (mounted), or neither.</summary>
public sealed record LiveHomeInfo(string Path, string State, string? Target);

/// <summary>
/// <c>packet-agent status --json</c>. Stable snake_case fields; fields may be added, none renamed.
/// <paramref name="LastBootUnreadable"/> says why a report that exists could not be read.
/// </summary>
public sealed record StatusReport(WorkspaceInfo Workspace, HomeInfo Home, LiveHomeInfo LiveHome, BootReport? LastBoot, IReadOnlyList<string> Attention, string? LastBootUnreadable = null);

/// <summary>What the mount table says about a path: whether it is a mount point, and the file system there.</summary>
public readonly record struct MountFacts(bool MountPoint, string? FileSystem);

/// <summary>
/// Gathers <c>packet-agent status</c>: read only, from the workspace's own files (marker, .bashrc,
/// last boot report), the mount table and statvfs. Every finding an operator should act on is
/// listed under "attention"; none means healthy.
/// </summary>
/// <remarks>
/// <c>writable</c> says whether the user running status may write a path (access(2)), which is
/// what an agent running as that user (<c>userId</c>) could do there.
/// </remarks>
public sealed class WorkspaceStatus(IFileSystem fileSystem, Func<string, MountFacts> mounts, Func<string, (long Free, long Total)?> space, Func<string, bool> writable, uint userId)
{
    public StatusReport Gather(string workspacePath, string liveHome)
    {
        var attention = new List<string>();
        bool present = fileSystem.Directory.Exists(workspacePath);
        var mount = present ? mounts(workspacePath) : default;
        var room = present ? space(workspacePath) : null;
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
        var home = Home(persisted);
        string state = Path.Join(workspacePath, WorkspaceLayout.State);
        var (lastBoot, unreadable) = Report(Path.Join(state, BootReportWriter.FileName));
        string? locked = present && userId != 0 ? FirstUnwritable(workspacePath) : null;
        if (locked is not null)
        {
            attention.Add($"{locked} is not writable by uid {userId}: an agent running as this user can neither seed nor keep the home there (give the volume to the user: the pod's securityContext.fsGroup, a root init container, or chown)");
        }

        if (present && !home.Seeded)
        {
            attention.Add(Step(lastBoot, "seed") is { Outcome: "warning" or "failed" } seed
                ? $"{persisted} is not seeded (no {WorkspaceLayout.Marker}): the last boot could not seed it ({seed.Summary})"
                : locked is not null
                    ? $"{persisted} is not seeded (no {WorkspaceLayout.Marker}), and cannot be by uid {userId}"
                    : $"{persisted} is not seeded (no {WorkspaceLayout.Marker}); the next boot seeds it");
        }
        else if (present && home.Marker?.NotPreserved is { Count: > 0 } losses)
        {
            attention.Add($"the volume did not keep all of the home when it was seeded ({string.Join(", ", losses.Keys.Select(k => k.Replace('_', ' ')))}; see \"not kept\"): cp -a loses the same there; a volume such as ext4 or xfs keeps them");
        }

        if (present && home.Seeded && !home.ProfileBlock)
        {
            attention.Add(Step(lastBoot, "profile") is { Outcome: "warning" or "failed" } profile
                ? $"{Path.Join(persisted, WorkspaceLayout.ShellProfile)} has no workspace block: the last boot could not add it ({profile.Summary})"
                : $"{Path.Join(persisted, WorkspaceLayout.ShellProfile)} has no workspace block; the next boot adds it");
        }

        var live = LiveHome(liveHome, persisted);
        if (present && home.Seeded && live.State == "not wired")
        {
            attention.Add($"{liveHome} is not the persisted home: shells that start there do not see it (see --link-home)");
        }

        if (unreadable is not null)
        {
            attention.Add($"the last boot's report cannot be read ({unreadable})");
        }
        else if (lastBoot is { Outcome: not "ok" })
        {
            int times = SameOutcomeStreak(lastBoot, state);
            string how = lastBoot.Outcome switch { "failed" => "failed", "stopped" => "were stopped", _ => "had warnings" };
            attention.Add(times > 1
                ? $"the last {times} boots {how} the same way: {string.Join("; ", lastBoot.Warnings)}"
                : $"the last boot {(lastBoot.Outcome == "stopped" ? "was stopped" : how)}: {string.Join("; ", lastBoot.Warnings)}");
        }

        return new StatusReport(workspace, home, live, lastBoot, attention, unreadable);
    }

    private static StepReport? Step(BootReport? report, string name) => report?.Steps.FirstOrDefault(s => s.Name == name);

    /// <summary>
    /// As the guard sees it: the workspace itself while it lacks the home, the state folder or bin,
    /// then each of those that exists; the first this user may not write.
    /// </summary>
    private string? FirstUnwritable(string workspace)
    {
        string[] kept = [WorkspaceLayout.Home, WorkspaceLayout.State, WorkspaceLayout.Bin];
        var paths = kept.Select(name => Path.Join(workspace, name)).ToList();
        if (!paths.All(fileSystem.Directory.Exists))
        {
            paths.Insert(0, workspace);
        }

        return paths.FirstOrDefault(path => fileSystem.Directory.Exists(path) && !writable(path));
    }

    /// <summary>How many boots in a row, newest first, ended as the last one did with the same warnings (the kept history is four).</summary>
    private int SameOutcomeStreak(BootReport last, string state)
    {
        int times = 1;
        for (int generation = 1; generation <= BootReportWriter.PreviousKept; generation++)
        {
            var (earlier, _) = Report(Path.Join(state, BootReportWriter.Previous(generation)));
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
        if (report.LastBootUnreadable is { } unreadable)
        {
            Line("last boot", $"report unreadable: {unreadable}");
        }
        else if (report.LastBoot is { } boot)
        {
            Line("last boot", $"{boot.StartedAt:yyyy-MM-dd HH:mm:ss} UTC, {boot.Outcome} in {boot.DurationSeconds:0.###} s, exit {boot.ExitCode}, agent {boot.AgentVersion}" + (boot.ImageVersion is { } image ? $", image {image}" : string.Empty));
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

    private HomeInfo Home(string persisted)
    {
        string markerPath = Path.Join(persisted, WorkspaceLayout.Marker);
        bool seeded = fileSystem.File.Exists(markerPath);
        MarkerBody? marker = null;
        bool legacy = false;
        if (seeded)
        {
            string body = fileSystem.File.ReadAllText(markerPath);
            legacy = body.Trim().Length == 0;
            marker = legacy ? null : TryParse(body, AgentJson.Default.MarkerBody);
        }

        string profilePath = Path.Join(persisted, WorkspaceLayout.ShellProfile);
        string profile = fileSystem.File.Exists(profilePath) ? fileSystem.File.ReadAllText(profilePath) : string.Empty;
        var lines = profile.Split('\n').Select(line => line.TrimEnd()).ToArray();
        return new HomeInfo(persisted, seeded, legacy, marker, lines.Contains(ManagedBlock.Start), lines.Contains(ManagedBlock.LegacyMarker));
    }

    private LiveHomeInfo LiveHome(string liveHome, string persisted)
    {
        var info = fileSystem.DirectoryInfo.New(liveHome);
        if (info.LinkTarget is { } target)
        {
            return new LiveHomeInfo(liveHome, target == persisted ? "linked" : "a link elsewhere", target);
        }

        if (!info.Exists)
        {
            return new LiveHomeInfo(liveHome, "missing", null);
        }

        return new LiveHomeInfo(liveHome, liveHome == persisted || mounts(liveHome).MountPoint ? "mounted" : "not wired", null);
    }

    /// <summary>A boot report: null when there is none, or null and why when it cannot be read or parsed.</summary>
    private (BootReport? Report, string? Unreadable) Report(string path)
    {
        if (!fileSystem.File.Exists(path))
        {
            return (null, null);
        }

        try
        {
            // Fields a report always has: a JSON object without them is not one (a truncated write, say).
            return JsonSerializer.Deserialize(fileSystem.File.ReadAllText(path), AgentJson.Default.BootReport) is { Outcome: not null, Steps: not null, Warnings: not null, Gpus: not null } report
                ? (report, null)
                : (null, $"{path} is not a boot report");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
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

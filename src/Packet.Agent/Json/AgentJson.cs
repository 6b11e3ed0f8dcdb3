using System.Text.Json.Serialization;
using Packet.Agent.Gpu;
using Packet.Agent.Hooks;

namespace Packet.Agent.Json;

/// <summary>The marker's body: who seeded the home, when, from where, and what the copy did.</summary>
public sealed record MarkerBody(
    string Agent,
    string AgentVersion,
    DateTimeOffset SeededAt,
    string SourceHome,
    MarkerCopied Copied,
    MarkerSkipped Skipped,
    double DurationSeconds,
    double FlushSeconds = 0,
    IReadOnlyDictionary<string, MarkerLoss>? NotPreserved = null);

public sealed record MarkerCopied(long Entries, long Files, long Directories, long Symlinks, long HardLinks, long Fifos, long Bytes, long KeptExisting, long BytesOnDisk = 0);

/// <summary>One kind of thing the volume could not hold (key: owners, modes, times, xattrs, symlinks, fifos, hard_links, names).</summary>
public sealed record MarkerLoss(long Count, string Example, string Reason);

public sealed record MarkerSkipped(long Unreadable, long Sockets, long Devices, long ChangedDuringCopy, long NotWritten);

/// <summary>
/// <c>/workspace/.packet/last-boot.json</c>: what one boot did, step by step. Also the core of
/// <c>packet-agent status --json</c>. Field names are stable (snake_case); fields may be added.
/// <c>workspace</c> is the workspace the boot was given (a report kept outside the volume counts
/// for that workspace alone); <c>kept_aside</c> says why the report is not on the volume but in the
/// container's runtime directory, and is absent when it is on the volume.
/// </summary>
public sealed record BootReport(
    string Agent,
    string AgentVersion,
    string? ImageVersion,
    DateTimeOffset StartedAt,
    double DurationSeconds,
    int ExitCode,
    string Outcome,
    IReadOnlyList<StepReport> Steps,
    SeedCounts? Seed,
    IReadOnlyList<GpuInfo> Gpus,
    IReadOnlyList<string> Warnings,
    string? Workspace = null,
    string? KeptAside = null);

/// <summary>One step of a boot: ok, skipped, warning or failed, how long, and what it said.</summary>
public sealed record StepReport(string Name, string Outcome, double DurationSeconds, string Summary);

/// <summary>The counts of a seed that ran in a boot: the copy's time and the flush's apart, and what the volume could not hold.</summary>
public sealed record SeedCounts(MarkerCopied Copied, MarkerSkipped Skipped, double DurationSeconds, double FlushSeconds = 0, IReadOnlyDictionary<string, MarkerLoss>? NotPreserved = null);

/// <summary><c>packet-agent gpu --json</c>: the GPUs, and the problem when the check failed.</summary>
public sealed record GpuReport(IReadOnlyList<GpuInfo> Gpus, string? Error);

/// <summary>
/// <c>/workspace/.packet/ssh.json</c>: what the last boot's SSH step set up, for status. The pid is
/// the sshd it started (in this container's pid namespace).
/// </summary>
public sealed record SshState(int Port, string HostKeyFingerprint, int Keys, bool HostKeysPersisted, int? Pid, string Log, string? ListenAddress = null);

/// <summary>Source-generated serialization: no reflection, so NativeAOT keeps it whole.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(MarkerBody))]
[JsonSerializable(typeof(GpuReport))]
[JsonSerializable(typeof(HookState))]
[JsonSerializable(typeof(BootReport))]
[JsonSerializable(typeof(Operations.StatusReport))]
[JsonSerializable(typeof(SshState))]
public sealed partial class AgentJson : JsonSerializerContext;

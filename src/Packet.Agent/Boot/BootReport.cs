using System.Text.Json.Serialization;
using Packet.Agent.Gpu;
using Packet.Agent.Home;

namespace Packet.Agent.Boot;

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
    BootEnding Outcome,
    IReadOnlyList<StepReport> Steps,
    SeedCounts? Seed,
    IReadOnlyList<GpuInfo> Gpus,
    IReadOnlyList<string> Warnings,
    string? Workspace = null,
    string? KeptAside = null);

/// <summary>How a boot ended; in the report as "ok", "warnings", "failed" or "stopped".</summary>
[JsonConverter(typeof(JsonStringEnumConverter<BootEnding>))]
public enum BootEnding
{
    [JsonStringEnumMemberName("ok")]
    Ok,

    [JsonStringEnumMemberName("warnings")]
    Warnings,

    [JsonStringEnumMemberName("failed")]
    Failed,

    [JsonStringEnumMemberName("stopped")]
    Stopped,
}

/// <summary>
/// One step of a boot: ok, skipped, warning or failed, how long, what it said, and, when it decided
/// again while carrying its plan out, why (<c>replanned</c>, absent otherwise).
/// </summary>
public sealed record StepReport(string Name, StepOutcome Outcome, double DurationSeconds, string Summary, string? Replanned = null);

/// <summary>The counts of a seed that ran in a boot: the copy's time and the flush's apart, and what the volume could not hold.</summary>
public sealed record SeedCounts(MarkerCopied Copied, MarkerSkipped Skipped, double DurationSeconds, double FlushSeconds = 0, IReadOnlyDictionary<string, MarkerLoss>? NotPreserved = null);

/// <summary>Reads boot reports (BootReportJson writes them): source-generated, so NativeAOT keeps it whole.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(BootReport))]
public sealed partial class BootJson : JsonSerializerContext;

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
    double DurationSeconds);

public sealed record MarkerCopied(long Entries, long Files, long Directories, long Symlinks, long HardLinks, long Fifos, long Bytes, long KeptExisting);

public sealed record MarkerSkipped(long Unreadable, long Sockets, long Devices, long ChangedDuringCopy, long NotWritten);

/// <summary><c>packet-agent gpu --json</c>: the GPUs, and the problem when the check failed.</summary>
public sealed record GpuReport(IReadOnlyList<GpuInfo> Gpus, string? Error);

/// <summary>Source-generated serialization: no reflection, so NativeAOT keeps it whole.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(MarkerBody))]
[JsonSerializable(typeof(GpuReport))]
[JsonSerializable(typeof(HookState))]
public sealed partial class AgentJson : JsonSerializerContext;

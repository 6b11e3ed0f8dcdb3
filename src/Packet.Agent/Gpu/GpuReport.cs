using System.Text.Json.Serialization;

namespace Packet.Agent.Gpu;

/// <summary><c>packet-agent gpu --json</c>: the GPUs, and the problem when the check failed.</summary>
public sealed record GpuReport(IReadOnlyList<GpuInfo> Gpus, string? Error);

/// <summary>Source-generated serialization of <c>gpu --json</c>.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(GpuReport))]
public sealed partial class GpuJson : JsonSerializerContext;

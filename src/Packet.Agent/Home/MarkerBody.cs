using System.Text.Json.Serialization;

namespace Packet.Agent.Home;

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

/// <summary>Source-generated serialization of the marker: no reflection, so NativeAOT keeps it whole.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(MarkerBody))]
public sealed partial class HomeJson : JsonSerializerContext;

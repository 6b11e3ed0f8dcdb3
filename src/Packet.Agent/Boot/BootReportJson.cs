using System.Text.Json;
using Packet.Agent.Gpu;
using Packet.Agent.Json;

namespace Packet.Agent.Boot;

/// <summary>
/// Writes a <see cref="BootReport"/> as <see cref="BootJson"/> would, straight to a Utf8JsonWriter.
/// The report is written on every boot; the serializer's first use (its metadata, the default
/// encoder's tables) costs more than the rest of a boot with nothing to do, hence also
/// <see cref="MinimalJsonEncoder"/>. Reading stays with
/// <see cref="BootJson"/>; a test holds the two to the same output.
/// </summary>
public static class BootReportJson
{
    public static byte[] Write(BootReport report)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(2048);
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = MinimalJsonEncoder.Instance }))
        {
            json.WriteStartObject();
            json.WriteString("agent", report.Agent);
            json.WriteString("agent_version", report.AgentVersion);
            if (report.ImageVersion is { } image)
            {
                json.WriteString("image_version", image);
            }

            json.WriteString("started_at", report.StartedAt);
            json.WriteNumber("duration_seconds", report.DurationSeconds);
            json.WriteNumber("exit_code", report.ExitCode);
            json.WriteString("outcome", WireName(report.Outcome));
            WriteSteps(json, report.Steps);
            if (report.Seed is { } seed)
            {
                WriteSeed(json, seed);
            }

            json.WriteStartArray("gpus");
            foreach (var gpu in report.Gpus)
            {
                WriteGpu(json, gpu);
            }

            json.WriteEndArray();
            json.WriteStartArray("warnings");
            foreach (string warning in report.Warnings)
            {
                json.WriteStringValue(warning);
            }

            json.WriteEndArray();
            if (report.Workspace is { } workspace)
            {
                json.WriteString("workspace", workspace);
            }

            if (report.KeptAside is { } aside)
            {
                json.WriteString("kept_aside", aside);
            }

            json.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The names <see cref="BootJson"/> reads (JsonStringEnumMemberName), without the reflection its converter starts with.</summary>
    public static string WireName(StepOutcome outcome) => outcome switch
    {
        StepOutcome.Ok => "ok",
        StepOutcome.Skipped => "skipped",
        StepOutcome.Warning => "warning",
        _ => "failed",
    };

    public static string WireName(BootEnding ending) => ending switch
    {
        BootEnding.Ok => "ok",
        BootEnding.Warnings => "warnings",
        BootEnding.Failed => "failed",
        _ => "stopped",
    };

    private static void WriteSteps(Utf8JsonWriter json, IReadOnlyList<StepReport> steps)
    {
        json.WriteStartArray("steps");
        foreach (var step in steps)
        {
            json.WriteStartObject();
            json.WriteString("name", step.Name);
            json.WriteString("outcome", WireName(step.Outcome));
            json.WriteNumber("duration_seconds", step.DurationSeconds);
            json.WriteString("summary", step.Summary);
            if (step.Replanned is { } replanned)
            {
                json.WriteString("replanned", replanned);
            }

            json.WriteEndObject();
        }

        json.WriteEndArray();
    }

    private static void WriteSeed(Utf8JsonWriter json, SeedCounts seed)
    {
        json.WriteStartObject("seed");
        json.WriteStartObject("copied");
        var c = seed.Copied;
        json.WriteNumber("entries", c.Entries);
        json.WriteNumber("files", c.Files);
        json.WriteNumber("directories", c.Directories);
        json.WriteNumber("symlinks", c.Symlinks);
        json.WriteNumber("hard_links", c.HardLinks);
        json.WriteNumber("fifos", c.Fifos);
        json.WriteNumber("bytes", c.Bytes);
        json.WriteNumber("kept_existing", c.KeptExisting);
        json.WriteNumber("bytes_on_disk", c.BytesOnDisk);
        json.WriteEndObject();
        json.WriteStartObject("skipped");
        var s = seed.Skipped;
        json.WriteNumber("unreadable", s.Unreadable);
        json.WriteNumber("sockets", s.Sockets);
        json.WriteNumber("devices", s.Devices);
        json.WriteNumber("changed_during_copy", s.ChangedDuringCopy);
        json.WriteNumber("not_written", s.NotWritten);
        json.WriteEndObject();
        json.WriteNumber("duration_seconds", seed.DurationSeconds);
        json.WriteNumber("flush_seconds", seed.FlushSeconds);
        if (seed.NotPreserved is { } losses)
        {
            json.WriteStartObject("not_preserved");
            foreach (var (kind, loss) in losses)
            {
                json.WriteStartObject(kind);
                json.WriteNumber("count", loss.Count);
                json.WriteString("example", loss.Example);
                json.WriteString("reason", loss.Reason);
                json.WriteEndObject();
            }

            json.WriteEndObject();
        }

        json.WriteEndObject();
    }

    private static void WriteGpu(Utf8JsonWriter json, GpuInfo gpu)
    {
        json.WriteStartObject();
        json.WriteNumber("index", gpu.Index);
        json.WriteString("name", gpu.Name);
        json.WriteString("uuid", gpu.Uuid);
        if (gpu.MemoryTotalMib is { } total)
        {
            json.WriteNumber("memory_total_mib", total);
        }

        if (gpu.MemoryUsedMib is { } used)
        {
            json.WriteNumber("memory_used_mib", used);
        }

        json.WriteString("driver_version", gpu.DriverVersion);
        json.WriteEndObject();
    }
}

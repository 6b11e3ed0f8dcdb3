using System.Globalization;
using Packet.Agent.Exec;

namespace Packet.Agent.Gpu;

/// <summary>One GPU as nvidia-smi reports it; memory in MiB, null where nvidia-smi says [N/A].</summary>
public sealed record GpuInfo(int Index, string Name, string Uuid, long? MemoryTotalMib, long? MemoryUsedMib, string DriverVersion);

/// <summary>The GPUs found, and the problem if the check did not come out clean.</summary>
public sealed record GpuQueryResult(IReadOnlyList<GpuInfo> Gpus, string? Problem)
{
    public bool Healthy => Problem is null;

    /// <summary>An nvidia-smi a root agent passed over on PATH (one another account could have changed), and why; null when none was.</summary>
    public string? PassedOver { get; init; }
}

/// <summary>
/// Asks nvidia-smi for the GPUs in query mode (machine-readable CSV) and reads its answer. Every
/// way it can go wrong becomes a problem in words: not installed, hung (killed at the timeout),
/// failed with the driver's own message, no GPUs, or output that is not what was asked for. A root
/// agent runs only an nvidia-smi of the image, never one another account could have changed
/// (<paramref name="distrust"/>, <see cref="ProgramTrust.ForImageProgram"/>).
/// </summary>
public sealed class NvidiaSmi(IProcessRunner runner, CommandResolver resolver, Func<string?> searchPath, Func<string, string?>? distrust = null)
{
    public static readonly IReadOnlyList<string> QueryArguments =
    [
        "--query-gpu=index,name,uuid,memory.total,memory.used,driver_version",
        "--format=csv,noheader,nounits",
    ];

    private const int FieldsPerLine = 6;

    public async Task<GpuQueryResult> QueryAsync(string nvidiaSmi, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var found = resolver.Resolve(nvidiaSmi, searchPath(), distrust);
        return await QueryAsync(found, timeout, cancellationToken) with { PassedOver = found.PassedOverNote };
    }

    private async Task<GpuQueryResult> QueryAsync(CommandResolution found, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (!found.Found)
        {
            return Failure($"nvidia-smi is not available ({found.Failure}); is the NVIDIA container runtime enabled for this pod?");
        }

        var result = await runner.RunAsync(found.Path!, QueryArguments, timeout, cancellationToken);
        if (result.StartError is not null)
        {
            return Failure($"could not start {found.Path}: {result.StartError}");
        }

        if (result.TimedOut)
        {
            return Failure($"{found.Path} did not answer within {timeout.TotalSeconds:0.#} s and was killed; the driver may be hung (see --gpu-timeout)");
        }

        if (result.ExitCode != 0)
        {
            string message = FirstLines(result.StandardOutput + "\n" + result.StandardError);
            return Failure($"{found.Path} failed with exit code {result.ExitCode}: {(message.Length > 0 ? message : "no message")}");
        }

        return Parse(result.StandardOutput);
    }

    /// <summary>Reads <c>--format=csv,noheader,nounits</c> output: one GPU per line.</summary>
    public static GpuQueryResult Parse(string output)
    {
        var gpus = new List<GpuInfo>();
        foreach (string rawLine in output.Split('\n'))
        {
            string line = rawLine.Trim();
            if (line.Length == 0)
            {
                continue;
            }

            var fields = line.Split(',').Select(f => f.Trim()).ToArray();
            if (fields.Length < FieldsPerLine || !int.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out int index))
            {
                return new GpuQueryResult(gpus, $"nvidia-smi printed a line that is not a GPU record: '{Shorten(line)}'");
            }

            // A name could hold a comma; the other fields cannot, so they are counted from the end.
            string name = string.Join(", ", fields[1..^4]);
            gpus.Add(new GpuInfo(index, name, fields[^4], Mebibytes(fields[^3]), Mebibytes(fields[^2]), fields[^1]));
        }

        return gpus.Count == 0
            ? new GpuQueryResult(gpus, "nvidia-smi reported no GPUs")
            : new GpuQueryResult(gpus, null);
    }

    private static long? Mebibytes(string field) =>
        long.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out long value) ? value : null;

    private static GpuQueryResult Failure(string problem) => new([], problem);

    private static string FirstLines(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Take(3);
        return Shorten(string.Join(" ", lines));
    }

    private static string Shorten(string text) => text.Length <= 300 ? text : text[..300] + "...";
}

using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>Runs one boot step as the sequence does: its decision, then (unless dry) the decision carried out.</summary>
internal static class Steps
{
    public static (StepResult Result, TOut Value) Run<TIn, TOut>(IBootStep<TIn, TOut> step, TIn input, BootOptions options, StopRequest? stop = null)
    {
        using var plan = step.Decide(input, new BootSettings(options, stop ?? new StopRequest()));
        return options.DryRun ? (plan.Preview, plan.Planned) : plan.Apply();
    }

    /// <summary>
    /// A dry run, then a run, on the same workspace: the dry run changes nothing under
    /// <paramref name="watched"/>, and the run decides exactly what the dry run printed before it
    /// carries that decision out. Returns what the dry run printed and handed on, and what the run did.
    /// </summary>
    public static (StepResult DryRun, TOut Planned, StepResult Run, TOut Value) DryRunThenRun<TIn, TOut>(
        IBootStep<TIn, TOut> step, Func<TIn> input, BootOptions options, string watched, Action<BootSettings>? beforeRun = null)
    {
        string before = Listing(watched);
        StepResult dryRun;
        TOut planned;
        using (var plan = step.Decide(input(), new BootSettings(options with { DryRun = true }, new StopRequest())))
        {
            (dryRun, planned) = (plan.Preview, plan.Planned);
        }

        Assert.Equal(before, Listing(watched));
        var settings = new BootSettings(options with { DryRun = false }, new StopRequest());
        beforeRun?.Invoke(settings);
        using var decided = step.Decide(input(), settings);
        Assert.Equal(dryRun, decided.Preview);
        var (run, value) = decided.Apply();
        return (dryRun, planned, run, value);
    }

    /// <summary>Every entry under a directory with its type, size, mode and modification time: what a dry run must leave as it was.</summary>
    private static string Listing(string root) => string.Join('\n', new DirectoryInfo(root)
        .EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true })
        .Select(e => $"{Path.GetRelativePath(root, e.FullName)} {e.Attributes} {(e as FileInfo)?.Length} {e.UnixFileMode} {e.LastWriteTimeUtc.Ticks} {e.LinkTarget}")
        .Order(StringComparer.Ordinal));
}

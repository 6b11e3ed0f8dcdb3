using System.IO.Abstractions.TestingHelpers;
using Packet.Agent.Boot;
using Packet.Agent.Exec;

namespace Packet.Agent.Tests;

/// <summary>A process runner that answers with a prepared result and remembers what it was asked to run.</summary>
internal sealed class FakeProcessRunner(ProcessResult result) : IProcessRunner
{
    public List<(string File, IReadOnlyList<string> Arguments, TimeSpan Timeout)> Calls { get; } = [];

    public Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Calls.Add((fileName, arguments, timeout));
        return Task.FromResult(result);
    }
}

/// <summary>
/// A boot step that decides a prepared result and value, remembers what it was handed, and counts
/// how often its decision was carried out; <c>effect</c> runs when it is (a stop signal arriving
/// during the step, say).
/// </summary>
internal sealed class FakeStep<TIn, TOut>(string name, int number, StepResult result, Func<TIn, TOut> value, FailurePolicy policy = FailurePolicy.WarnAndContinue, Action<BootSettings>? effect = null) : IBootStep<TIn, TOut>
{
    public StepId Id { get; } = new(name, number);

    public FailurePolicy Policy => policy;

    public int Runs { get; private set; }

    public List<TIn> Inputs { get; } = [];

    /// <summary>The changes its plans name (a dry run lists them under the step's line).</summary>
    public IReadOnlyList<PlannedChange> Changes { get; init; } = [];

    public StepPlan<TOut> Decide(TIn input, BootSettings settings)
    {
        Inputs.Add(input);
        return new Plan(result, value(input), Changes, input);
    }

    public (StepResult Result, TOut Value) Apply(StepPlan<TOut> plan, BootSettings settings)
    {
        Runs++;
        effect?.Invoke(settings);
        return (result, value(((Plan)plan).Input));
    }

    private sealed class Plan(StepResult preview, TOut planned, IReadOnlyList<PlannedChange> changes, TIn input) : StepPlan<TOut>(preview, planned, changes)
    {
        public TIn Input => input;
    }
}

internal static class FakeFileSystem
{
    /// <summary>A file system holding an executable nvidia-smi in /usr/bin, and whatever else is asked for.</summary>
    public static MockFileSystem With(params string[] files)
    {
        var fileSystem = new MockFileSystem();
        foreach (string file in files)
        {
            fileSystem.AddFile(file, new MockFileData(string.Empty));
        }

        return fileSystem;
    }

    /// <summary>A resolver over a mock file system where files named in <paramref name="executables"/> are executable.</summary>
    public static CommandResolver Resolver(MockFileSystem fileSystem, params string[] executables) =>
        new(fileSystem, path => executables.Contains(path));
}

/// <summary>The home's account the unit tests boot for, and program checks left to their own tests.</summary>
internal static class TestAccounts
{
    public static readonly AccountChoice Root = AccountChoice.Of(new HomeAccount(0, 0, "the test's"));

    /// <summary>What an agent that is not root checks of the programs it runs: nothing (ProgramTrustTests check what root does).</summary>
    public static ProgramTrust NoProgramChecks => new(new PathTablePosix(effectiveUserId: 1000));
}

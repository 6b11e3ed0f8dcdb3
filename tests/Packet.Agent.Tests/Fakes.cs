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
    public string Name => name;

    public int Number => number;

    public FailurePolicy Policy => policy;

    public int Runs { get; private set; }

    public List<TIn> Inputs { get; } = [];

    public StepPlan<TOut> Decide(TIn input, BootSettings settings)
    {
        Inputs.Add(input);
        return StepPlan.ToApply(result, value(input), () =>
        {
            Runs++;
            effect?.Invoke(settings);
            return (result, value(input));
        });
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

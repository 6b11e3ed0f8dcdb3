using System.Collections;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Exec;
using Packet.Agent.Home;
using Packet.Agent.Profile;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>What step 8 hands to Program: the execve to make, or the shell's exit code for a command that cannot run.</summary>
public sealed record ExecDecision(ExecPlan? Plan, ExitCode FailureCode, string? Failure);

/// <summary>
/// Step 8, what can be settled before the agent lets go: COMMAND found on the PATH it will have
/// (<see cref="WorkspaceEnvironment"/>: <c>/workspace/bin</c> first), its environment, and the live
/// home wired to the persisted one (<see cref="LiveHome"/>). A root agent passes over a COMMAND of
/// that name that another account could have changed (<see cref="ProgramTrust"/>), with a warning
/// naming it; the environment COMMAND gets is the same either way. The execve itself is done by
/// <see cref="ProcessReplacer"/> once the logs are flushed. A live home left unlinked is this
/// step's warning, counted like any other.
/// </summary>
public sealed class ExecStep(CommandResolver resolver, ProgramTrust trust, Func<IDictionary> environment, LiveHome liveHome) : IBootStep<HomeState?, ExecDecision>
{
    public StepId Id => StepId.Exec;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepPlan<ExecDecision> Decide(HomeState? input, BootSettings settings)
    {
        var options = settings.Options;
        var command = options.Command;
        var variables = WorkspaceEnvironment.ForCommand(environment(), input is { Workspace: var open } ? (open.Path, open.Exists) : null);
        WiringPlan? wiring = null;
        if (input is { Ready: true, Workspace: var workspace } && options.LinkHome == LinkHomeMode.Auto)
        {
            wiring = liveHome.Decide(options.Home, workspace.PathOf(WorkspaceLayout.Home));
        }

        var found = resolver.Resolve(command[0], variables.GetValueOrDefault("PATH"), trust.ForCommand);
        if (!found.Found)
        {
            var code = found.ExitCode == 126 ? ExitCode.CommandNotExecutable : ExitCode.CommandNotFound;
            string failure = $"cannot run {command[0]}: {found.Failure}" + (found.PassedOverNote is { } passed ? $"; {passed}" : string.Empty);
            return StepPlan.Settled<ExecDecision>(StepResult.Failed(failure), new ExecDecision(null, code, failure));
        }

        return new CommandPlan(found.Path!, command, variables, wiring, found.PassedOverNote);
    }

    /// <summary>The live home wired as planned, and COMMAND with the environment it will have.</summary>
    public (StepResult Result, ExecDecision Value) Apply(StepPlan<ExecDecision> plan, BootSettings settings)
    {
        if (plan is not CommandPlan command)
        {
            return (plan.Preview, plan.Planned);
        }

        var variables = new SortedDictionary<string, string>(command.Variables.ToDictionary(v => v.Key, v => v.Value), StringComparer.Ordinal);
        var home = command.Wiring is null ? null : liveHome.Apply(command.Wiring);
        if (home?.HomeForCommand is { } homeForCommand)
        {
            variables["HOME"] = homeForCommand;
        }

        var decision = new ExecDecision(Plan(command.Path, command.Command, variables), ExitCode.Success, null);
        string replacing = $"replacing the agent with {command.Path} {string.Join(' ', command.Command.Skip(1))}";
        string said = string.Join("; ", new[] { home?.Summary, replacing, command.PassedOver }.OfType<string>());
        return (home is { IsWarning: true } || command.PassedOver is not null ? StepResult.Problem(said) : StepResult.Ok(said), decision);
    }

    /// <summary>The live home's moves and link, as a dry run lists them.</summary>
    private static IEnumerable<PlannedChange> Changes(WiringPlan? wiring)
    {
        if (wiring is not { Settled: null, LiveHome: { } live, PersistedHome: { } persisted })
        {
            yield break;
        }

        if (wiring.MoveAsideTo is { } aside)
        {
            yield return new PlannedChange(ChangeKind.Move, live, aside);
            yield return new PlannedChange(ChangeKind.RemoveTree, live, Condition: $"{WiringPlan.ClearedWhen}: this container's view of it only, which the image keeps");
        }

        yield return new PlannedChange(ChangeKind.Link, live, persisted);
    }

    private static ExecPlan Plan(string path, IReadOnlyList<string> command, SortedDictionary<string, string> variables) =>
        new(path, command, variables.Select(v => $"{v.Key}={v.Value}").ToArray());

    /// <summary>COMMAND found where it will run, its environment, and the live home's wiring.</summary>
    private sealed class CommandPlan(string path, IReadOnlyList<string> command, SortedDictionary<string, string> variables, WiringPlan? wiring, string? passedOver)
        : StepPlan<ExecDecision>(
            passedOver is null
                ? StepResult.Ok($"would replace the agent with {string.Join(' ', command)}" + (wiring is null ? string.Empty : $"; {wiring.Preview}"))
                : StepResult.Problem($"would replace the agent with {string.Join(' ', command)}" + (wiring is null ? string.Empty : $"; {wiring.Preview}") + $"; {passedOver}"),
            new ExecDecision(Plan(path, command, variables), ExitCode.Success, null),
            [.. Changes(wiring), new PlannedChange(ChangeKind.Exec, path, string.Join(' ', command))])
    {
        public string Path => path;

        public IReadOnlyList<string> Command => command;

        public IReadOnlyDictionary<string, string> Variables => variables;

        public WiringPlan? Wiring => wiring;

        /// <summary>What a root agent passed over on PATH, and why; null when nothing was.</summary>
        public string? PassedOver => passedOver;
    }
}

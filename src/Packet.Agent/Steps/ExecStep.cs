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
/// home wired to the persisted one (<see cref="LiveHome"/>). The execve itself is done by
/// <see cref="ProcessReplacer"/> once the logs are flushed. A live home left unlinked is this
/// step's warning, counted like any other.
/// </summary>
public sealed class ExecStep(CommandResolver resolver, Func<IDictionary> environment, LiveHome liveHome) : IBootStep<HomeState?, ExecDecision>
{
    public string Name => "exec";

    public int Number => 8;

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

        var found = resolver.Resolve(command[0], variables.GetValueOrDefault("PATH"));
        if (!found.Found)
        {
            var code = found.ExitCode == 126 ? ExitCode.CommandNotExecutable : ExitCode.CommandNotFound;
            string failure = $"cannot run {command[0]}: {found.Failure}";
            return StepPlan.Settled<ExecDecision>(StepResult.Failed(failure), new ExecDecision(null, code, failure));
        }

        string typed = string.Join(' ', command);
        string preview = $"would replace the agent with {typed}" + (wiring is null ? string.Empty : $"; {wiring.Preview}");
        var planned = new ExecDecision(Plan(found.Path!, command, variables), ExitCode.Success, null);
        return StepPlan.ToApply<ExecDecision>(StepResult.Ok(preview), planned, () =>
        {
            var home = wiring is null ? null : liveHome.Apply(wiring);
            if (home?.HomeForCommand is { } homeForCommand)
            {
                variables["HOME"] = homeForCommand;
            }

            var decision = new ExecDecision(Plan(found.Path!, command, variables), ExitCode.Success, null);
            string replacing = $"replacing the agent with {found.Path} {string.Join(' ', command.Skip(1))}";
            return home switch
            {
                { IsWarning: true } => (StepResult.Problem($"{home.Summary}; {replacing}"), decision),
                { } wired => (StepResult.Ok($"{wired.Summary}; {replacing}"), decision),
                _ => (StepResult.Ok(replacing), decision),
            };
        });
    }

    private static ExecPlan Plan(string path, IReadOnlyList<string> command, SortedDictionary<string, string> variables) =>
        new(path, command, variables.Select(v => $"{v.Key}={v.Value}").ToArray());
}

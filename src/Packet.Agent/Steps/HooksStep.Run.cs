using System.Collections;
using Microsoft.Extensions.Logging;
using Packet.Agent.Boot;
using Packet.Agent.Hooks;
using Packet.Agent.Posix;
using Packet.Agent.Profile;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>
/// Carries the hooks step's plan out: the hook folders made for the home's owner, each planned hook
/// run in order as that owner with its own log file, successes remembered (first-boot hooks by
/// content, requirements.txt by content), a stop signal honoured between and during hooks.
/// </summary>
public sealed partial class HooksStep
{
    private (StepResult, NoValue) RunAll(HooksPlan plan, BootSettings settings)
    {
        var (workspace, identity, hookState) = (plan.Workspace, plan.Identity, plan.State);
        var failures = new List<string>();
        int ran = 0;
        DirectoryHandle? logs = null;
        try
        {
            Array.ForEach([.. plan.Notes], note => Log.Note(logger, note));
            failures.AddRange(plan.Refused);
            MakeFolders(workspace, identity);
            using var own = StateFolder.CreateOwn(posix, workspace);
            var variables = HookEnvironment(workspace, identity);
            bool venvFailed = false;
            foreach (var hook in plan.Hooks)
            {
                if (settings.Stop.Requested || (hook.Kind == HookKind.Requirements && venvFailed))
                {
                    break;
                }

                if (hook.Failure is { } cannot)
                {
                    failures.Add(cannot);
                    venvFailed = true;
                    continue;
                }

                logs ??= own.CreateDirectory(WorkspaceLayout.Logs, FileModes.Directory);
                ran++;
                if (!Run(hook, identity, variables, workspace.Path, logs, settings, failures))
                {
                    venvFailed |= hook.Kind == HookKind.Venv;
                    continue;
                }

                if (hook.Kind is HookKind.FirstBoot or HookKind.Requirements)
                {
                    hookState = RecordSuccess(hook, hookState, workspace, settings.Account);
                }
            }
        }
        catch (IOException e)
        {
            return (StepResult.Problem($"{e.Message}; hooks were not run"), default);
        }
        finally
        {
            logs?.Dispose();
        }

        if (failures.Count > 0)
        {
            return (StepResult.Problem(string.Join("; ", failures)), default);
        }

        string made = plan.FoldersMade is { } folders ? $"; created {folders}" : string.Empty;
        return (ran == 0 ? StepResult.Skipped($"no hooks to run{made}") : StepResult.Ok($"{ran} hook{(ran == 1 ? string.Empty : "s")} ran{made}"), default);
    }

    /// <summary>The hook folders in the state folder, which belong to the hooks' account so the user can add hooks to a root-owned .packet.</summary>
    private void MakeFolders(DirectoryHandle workspace, HookIdentity identity)
    {
        using var shared = StateFolder.CreateShared(posix, workspace);
        foreach (string folder in new[] { WorkspaceLayout.FirstBootHooks, WorkspaceLayout.BootHooks })
        {
            shared.CreateDirectory(folder, FileModes.Directory, (identity.Uid, identity.Gid)).Dispose();
        }
    }

    /// <summary>A first-boot hook that succeeded (by its content's hash), or the requirements installed: in the account's hooks.json at once.</summary>
    private HookState RecordSuccess(PlannedHook hook, HookState? hookState, DirectoryHandle workspace, AccountChoice account)
    {
        using var state = account.CreateRecords(posix, workspace);
        hookState ??= HookState.Load(state);
        if (hook.Kind == HookKind.FirstBoot)
        {
            hookState.FirstBootSucceeded[hook.FolderName!] = hook.Hash!;
        }
        else
        {
            hookState.RequirementsInstalled = hook.Hash;
        }

        hookState.Save(state, posix.EffectiveUserId, posix.EffectiveGroupId);
        return hookState;
    }

    /// <summary>Runs one hook; false (and the failure noted) when it did not succeed.</summary>
    private bool Run(PlannedHook hook, HookIdentity identity, Dictionary<string, string> variables, string workingDirectory, DirectoryHandle logs, BootSettings settings, List<string> failures)
    {
        string logName = hook.LogName;
        int logFd = logs.CreateFile(logName, FileModes.Readable);
        try
        {
            string display = NativeName.Display(hook.Name);
            Log.Running(logger, display, identity.Uid);
            var outcome = runner.Run(
                new HookRun(hook.Name, hook.Program, hook.Arguments, logFd),
                identity,
                variables,
                workingDirectory,
                settings.Options.HookTimeout,
                line => Log.Output(logger, display, line),
                settings.Stop.Token);
            if (outcome.Succeeded)
            {
                Log.Succeeded(logger, display, Units.Duration(outcome.Duration));
                return true;
            }

            failures.Add($"{display} {outcome.Describe(settings.Options.HookTimeout)} (log: {logs.PathOf(logName)})");
            return false;
        }
        finally
        {
            posix.Close(logFd);
        }
    }

    /// <summary>The variables that name folders (or, LD_PRELOAD, files) a root hook searches for what it runs or loads.</summary>
    private static readonly string[] SearchPaths = ["PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "LD_PRELOAD"];

    /// <summary>
    /// A hook's environment: the pod's, with the workspace's variables (its bin and venv first on
    /// PATH). For a hook run as root, the search paths keep only what no other account can change:
    /// what a root hook runs or loads by name must not be found where a user of the volume put it;
    /// and pip keeps no cache on a volume others could plant a built wheel in.
    /// </summary>
    private Dictionary<string, string> HookEnvironment(DirectoryHandle workspace, HookIdentity identity)
    {
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry variable in environment())
        {
            variables[(string)variable.Key] = (string?)variable.Value ?? string.Empty;
        }

        variables["HOME"] = workspace.PathOf(WorkspaceLayout.Home);
        variables["PACKET_WORKSPACE"] = workspace.Path;
        variables["PIP_CACHE_DIR"] = workspace.PathOf(Path.Join(".cache", "pip"));
        variables["PIP_DISABLE_PIP_VERSION_CHECK"] = "1";
        WorkspaceEnvironment.Apply(variables, WorkspaceEnvironment.For(workspace.Path, workspace.Exists));
        if (identity.Uid == 0)
        {
            foreach (string name in SearchPaths.Where(variables.ContainsKey))
            {
                variables[name] = string.Join(':', variables[name].Split([':', ' '], StringSplitOptions.RemoveEmptyEntries).Where(folder => folder.StartsWith('/') && trust.MaySearch(folder)));
            }

            if (!trust.MaySearch(variables["PIP_CACHE_DIR"]))
            {
                variables.Remove("PIP_CACHE_DIR");
                variables["PIP_NO_CACHE_DIR"] = "1";
            }
        }

        return variables;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = StepNumber.Hooks, Level = LogLevel.Information, Message = "running {Hook} as uid {Uid}")]
        public static partial void Running(ILogger logger, string hook, uint uid);

        [LoggerMessage(EventId = StepNumber.Hooks, Level = LogLevel.Information, Message = "{Hook}: {Line}")]
        public static partial void Output(ILogger logger, string hook, string line);

        [LoggerMessage(EventId = StepNumber.Hooks, Level = LogLevel.Information, Message = "{Hook} succeeded in {Duration}")]
        public static partial void Succeeded(ILogger logger, string hook, string duration);

        [LoggerMessage(EventId = StepNumber.Hooks, Level = LogLevel.Information, Message = "{Note}")]
        public static partial void Note(ILogger logger, string note);
    }
}

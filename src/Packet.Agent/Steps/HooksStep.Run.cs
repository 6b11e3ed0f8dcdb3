using System.Collections;
using Microsoft.Extensions.Logging;
using Mono.Unix.Native;
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
    private const FilePermissions LogMode = FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IRGRP | FilePermissions.S_IROTH;

    private (StepResult, NoValue) RunAll(DirectoryHandle workspace, HookIdentity identity, List<PlannedHook> hooks, List<string> notes, HookState? hookState, BootSettings settings)
    {
        var failures = new List<string>();
        int ran = 0;
        DirectoryHandle? logs = null;
        try
        {
            foreach (string note in notes)
            {
                Log.Note(logger, note);
            }

            using var state = workspace.CreateDirectory(WorkspaceLayout.State, WorkspaceLayout.DirectoryMode);
            // The folders belong to the home's owner, so the user can add hooks to a root-owned .packet.
            foreach (string folder in new[] { FirstBootFolder, BootFolder })
            {
                state.CreateDirectory(folder, WorkspaceLayout.DirectoryMode, (identity.Uid, identity.Gid)).Dispose();
            }

            var variables = HookEnvironment(workspace);
            bool venvFailed = false;
            foreach (var hook in hooks)
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

                logs ??= state.CreateDirectory(LogsFolder, WorkspaceLayout.DirectoryMode);
                ran++;
                if (!Run(hook, identity, variables, workspace.Path, logs, settings, failures))
                {
                    venvFailed |= hook.Kind == HookKind.Venv;
                    continue;
                }

                if (hook.Kind is HookKind.FirstBoot or HookKind.Requirements)
                {
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

        return (ran == 0 ? StepResult.Skipped("no hooks to run") : StepResult.Ok($"{ran} hook{(ran == 1 ? string.Empty : "s")} ran"), default);
    }

    /// <summary>Runs one hook; false (and the failure noted) when it did not succeed.</summary>
    private bool Run(PlannedHook hook, HookIdentity identity, Dictionary<string, string> variables, string workingDirectory, DirectoryHandle logs, BootSettings settings, List<string> failures)
    {
        string logName = hook.Name.Replace('/', '-') + ".log";
        // Made afresh: a log a root agent left is not writable by the user's agent, but removable.
        posix.UnlinkAt(logs.Fd, logName, isDirectory: false);
        int logFd = logs.CreateFile(logName, LogMode);
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

    private Dictionary<string, string> HookEnvironment(DirectoryHandle workspace)
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
        return variables;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "running {Hook} as uid {Uid}")]
        public static partial void Running(ILogger logger, string hook, uint uid);

        [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "{Hook}: {Line}")]
        public static partial void Output(ILogger logger, string hook, string line);

        [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "{Hook} succeeded in {Duration}")]
        public static partial void Succeeded(ILogger logger, string hook, string duration);

        [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "{Note}")]
        public static partial void Note(ILogger logger, string note);
    }
}

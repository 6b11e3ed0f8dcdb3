using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Posix;
using Packet.Agent.Ssh;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>The SSH step's decision as data: what it found, what it will do, and every change that makes.</summary>
public sealed partial class SshStep
{
    /// <summary>The home whose ~/.ssh gets the keys: its path, the persisted home's state when it is that one, and its owner's uid (null: no home to look at).</summary>
    private sealed record KeysHome(string Path, HomeState? Persisted, uint? Owner);

    /// <summary>What the decision found before it looks at sshd: the programs, the account and home, the keys there and the pod's, and the variables sessions start from.</summary>
    private sealed record SshFound(string Sshd, string Keygen, Account Login, KeysHome Home, string KeysFile, string CurrentKeys, IReadOnlyList<PublicKey> Keys, IReadOnlyDictionary<string, string> Variables);

    /// <summary>Where the host keys are kept and where sshd loads them from, the types offered, those to make, and the copies to refresh.</summary>
    private sealed record HostKeySet(string Folder, string Loaded, bool OnVolume, IReadOnlyList<string> Types, IReadOnlyList<string> ToMake, IReadOnlyList<string> Stale)
    {
        public string[] Files => Types.Select(type => System.IO.Path.Join(Loaded, HostKeyName(type))).ToArray();
    }

    /// <summary>What the step decided: sshd and ssh-keygen, the keys and where they go, the host keys, the config, and what happens to sshd.</summary>
    private sealed record SshDecision(
        string Sshd,
        string Keygen,
        int Port,
        string? ListenAddress,
        IReadOnlyList<PublicKey> Keys,
        HomeState? Workspace,
        KeysHome Home,
        string KeysFile,
        HostKeySet HostKeys,
        Account Account,
        string Config,
        SshdAction Action,
        RunningSshd? Running,
        string Log,
        IReadOnlyDictionary<string, string> Sessions,
        IReadOnlyList<string> Notes,
        IReadOnlyList<string> Problems)
    {
        public string Listening => ListenAddress is null ? $"port {Port}" : $"{ListenAddress} port {Port}";

        public StepResult Preview
        {
            get
            {
                string keys = $"{Units.Count(Keys.Count)} key{(Keys.Count == 1 ? string.Empty : "s")} from the pod in {KeysFile}";
                string hostKeys = (HostKeys.ToMake.Count > 0 ? $"would make the {string.Join(" and ", HostKeys.ToMake)} host key{(HostKeys.ToMake.Count == 1 ? string.Empty : "s")}, " : "host keys ")
                    + (HostKeys.OnVolume ? $"kept in {HostKeys.Folder}" : "temporary (no volume)");
                string sshd = Action switch
                {
                    SshdAction.Start => $"would start {Sshd} on {Listening}",
                    SshdAction.Replace => $"would replace the running sshd (pid {Running!.Pid}), whose configuration differs, with {Sshd} on {Listening} (its sessions go on)",
                    _ => $"would leave the running sshd (pid {Running!.Pid}) alone: its configuration is the same",
                };
                string summary = $"{sshd} for {Account.Name} with {keys}; {hostKeys}; {Units.Count(Sessions.Count)} variables for sessions; log {Log}"
                    + string.Concat(Notes.Select(note => $"; {note}"))
                    + (Problems.Count > 0 ? $"; {string.Join("; ", Problems)}" : string.Empty);
                return Problems.Count > 0 ? StepResult.Problem(summary) : StepResult.Ok(summary);
            }
        }
    }

    /// <summary>What is there already, looked at when deciding: which of the step's changes are needed.</summary>
    private sealed record SshLook(
        bool SshFolderMissing,
        bool SshFolderModeWrong,
        bool KeysChange,
        bool RuntimeMissing,
        bool RuntimeLoose,
        bool HostKeyFolderMissing,
        bool HostKeyFolderLoose,
        bool LoadedFolderMissing,
        bool PrivilegeSeparationMissing,
        bool StateMissing,
        bool PidFileThere);

    /// <summary>SSH to set up: the decision, and the changes carrying it out makes.</summary>
    private sealed class SshPlan(SshDecision decision, SshLook look, SshPaths paths)
        : StepPlan<NoValue>(decision.Preview, default, ChangesOf(decision, look, paths))
    {
        public SshDecision Decision => decision;

        private static List<PlannedChange> ChangesOf(SshDecision d, SshLook look, SshPaths paths)
        {
            var changes = KeysChanges(d.KeysFile, look);
            if (look.RuntimeMissing)
            {
                changes.Add(PlannedChange.CreateDirectory(paths.Runtime, "root's, 0700"));
            }
            else if (look.RuntimeLoose)
            {
                changes.Add(new PlannedChange(ChangeKind.SetMode, paths.Runtime, "0700: secrets go there"));
            }

            if (d.Action != SshdAction.LeaveAlone)
            {
                changes.AddRange(StartChanges(d, look, paths));
            }

            changes.Add(new PlannedChange(ChangeKind.RunProgram, d.Keygen, $"-l -E sha256 -f {d.HostKeys.Files[0]}.pub: the host key's fingerprint"));
            if (d.Workspace is { } home)
            {
                if (look.StateMissing)
                {
                    changes.Add(PlannedChange.CreateDirectory(home.Workspace.PathOf(WorkspaceLayout.State)));
                }

                changes.Add(PlannedChange.WriteFile(home.Workspace.PathOf(Path.Join(WorkspaceLayout.State, WorkspaceLayout.SshState))));
            }

            return changes;
        }

        private static IEnumerable<PlannedChange> StartChanges(SshDecision d, SshLook look, SshPaths paths)
        {
            if (d.HostKeys.OnVolume && look.HostKeyFolderMissing)
            {
                yield return PlannedChange.CreateDirectory(d.HostKeys.Folder, "root's, 0700");
            }
            else if (d.HostKeys.OnVolume && look.HostKeyFolderLoose)
            {
                yield return new PlannedChange(ChangeKind.SetMode, d.HostKeys.Folder, "0700");
            }

            if (look.LoadedFolderMissing && (d.HostKeys.ToMake.Count > 0 || d.HostKeys.Stale.Count > 0))
            {
                yield return PlannedChange.CreateDirectory(d.HostKeys.Loaded, "root's, 0700");
            }

            if (d.HostKeys.ToMake.Count > 0)
            {
                yield return PlannedChange.CreateDirectory(Path.Join(paths.Runtime, KeygenFolder), "root's, 0700, emptied first");
            }

            foreach (string type in d.HostKeys.ToMake)
            {
                string made = Path.Join(paths.Runtime, KeygenFolder, HostKeyName(type));
                yield return new PlannedChange(ChangeKind.RunProgram, d.Keygen, $"-q -t {type} -N \"\" -C \"packet-agent host key\" -f {made}: makes the {type} host key in the runtime directory");
                if (d.HostKeys.OnVolume)
                {
                    yield return PlannedChange.WriteFile(Path.Join(d.HostKeys.Folder, HostKeyName(type)), "root's, 0600, by descriptor");
                    yield return PlannedChange.WriteFile(Path.Join(d.HostKeys.Folder, HostKeyName(type) + ".pub"), "root's, 0644, by descriptor");
                }

                yield return PlannedChange.Remove(made);
                yield return PlannedChange.Remove(made + ".pub");
            }

            foreach (string type in d.HostKeys.Stale.Union(d.HostKeys.OnVolume ? [] : d.HostKeys.ToMake))
            {
                yield return PlannedChange.WriteFile(Path.Join(d.HostKeys.Loaded, HostKeyName(type)), "the copy sshd loads, root's, 0600");
                yield return PlannedChange.WriteFile(Path.Join(d.HostKeys.Loaded, HostKeyName(type) + ".pub"));
            }

            yield return PlannedChange.WriteFile(Path.Join(paths.Runtime, AgentSshd.ConfigFile), "root's, 0600");
            yield return PlannedChange.WriteFile(Path.Join(paths.Runtime, PodEnvironment.RecordFile), "root's, 0600");
            if (look.PrivilegeSeparationMissing)
            {
                yield return PlannedChange.CreateDirectory(paths.PrivilegeSeparation);
            }

            if (d.Action == SshdAction.Replace)
            {
                yield return new PlannedChange(ChangeKind.StopProcess, "sshd", $"pid {d.Running!.Pid}, its listener alone: the sessions go on");
            }

            if (look.PidFileThere || d.Action == SshdAction.Replace)
            {
                yield return PlannedChange.Remove(Path.Join(paths.Runtime, AgentSshd.PidFile), "the earlier sshd's");
            }

            yield return new PlannedChange(ChangeKind.StartProcess, d.Sshd, $"-f {Path.Join(paths.Runtime, AgentSshd.ConfigFile)} -E {d.Log}");
        }
    }

    /// <summary>No sshd: only the keys an earlier boot took from the pod, removed from the block.</summary>
    private sealed class StaleKeysPlan(StepResult result, KeysHome home, string keysFile, int stale, string summary, SshLook look)
        : StepPlan<NoValue>(
            result with { Summary = result.Summary + $"; would remove the {Units.Count(stale)} key{(stale == 1 ? string.Empty : "s")} an earlier boot took from the pod from {keysFile}" },
            default,
            KeysChanges(keysFile, look))
    {
        public KeysHome Home => home;

        public string Summary => summary;

        public string Done => Preview.Summary.Replace("; would remove the", "; removed the", StringComparison.Ordinal);
    }

    /// <summary>~/.ssh made or set to 0700, and authorized_keys written, as needed.</summary>
    private static List<PlannedChange> KeysChanges(string keysFile, SshLook look)
    {
        string folder = Path.GetDirectoryName(keysFile)!;
        var changes = new List<PlannedChange>();
        if (look.SshFolderMissing)
        {
            changes.Add(PlannedChange.CreateDirectory(folder, "0700, the home owner's"));
        }
        else if (look.SshFolderModeWrong)
        {
            changes.Add(new PlannedChange(ChangeKind.SetMode, folder, "0700"));
        }

        if (look.KeysChange)
        {
            changes.Add(PlannedChange.WriteFile(keysFile, "0600, the pod's keys in its managed block"));
        }

        return changes;
    }

    /// <summary>What is there already: which of the step's changes it needs.</summary>
    private SshLook Look(HomeState? input, KeysHome home, string keysFile, HostKeySet? hostKeys, string current, IReadOnlyList<PublicKey> keys)
    {
        bool Missing(string path) => posix.LStatAt(FileModes.AtCurrentDirectory, path, out _) < 0;
        bool ModeIs(string path, FilePermissions mode, bool rootsOnly = false) =>
            posix.LStatAt(FileModes.AtCurrentDirectory, path, out var stat) >= 0 && (stat.st_mode & FilePermissions.ALLPERMS) == mode && (!rootsOnly || stat.st_uid == 0);
        string folder = Path.GetDirectoryName(keysFile)!;
        bool keysThere = !Missing(keysFile);
        bool keysChange = !ReferenceEquals(AuthorizedKeysBlock.Apply(current, keys.Select(AuthorizedKeysBlock.AsBytes).ToList(), out _), current) || (keysThere && !ModeIs(keysFile, FileModes.Private));
        return new SshLook(
            Missing(folder),
            !Missing(folder) && !ModeIs(folder, FileModes.PrivateDirectory),
            keysChange,
            Missing(paths.Runtime),
            !Missing(paths.Runtime) && !ModeIs(paths.Runtime, FileModes.PrivateDirectory),
            hostKeys is not null && Missing(hostKeys.Folder),
            hostKeys is not null && !Missing(hostKeys.Folder) && !ModeIs(hostKeys.Folder, FileModes.PrivateDirectory, rootsOnly: true),
            hostKeys is not null && Missing(hostKeys.Loaded),
            Missing(paths.PrivilegeSeparation),
            input is not null && Missing(input.Workspace.PathOf(WorkspaceLayout.State)),
            !Missing(Path.Join(paths.Runtime, AgentSshd.PidFile)));
    }
}

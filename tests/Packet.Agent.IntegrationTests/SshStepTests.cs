using System.Collections;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Exec;
using Packet.Agent.Posix;
using Packet.Agent.Ssh;
using Packet.Agent.Steps;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// The SSH step carried out on a real workspace: the authorized keys, the host keys made by the real
/// ssh-keygen, sshd's config, the state for status. sshd itself is a stand-in (<c>bin/sshd</c>, a
/// shell script): the real one binds a port on the machine and wants /run/sshd, so it runs only in the
/// end-to-end SshTests, in a mount namespace of its own. The stand-in does what openssh's sshd does
/// when it starts as a daemon (sshd(8), -f, -E, PidFile): the parent exits 0 as a background process
/// named sshd starts, which writes its pid to the config's PidFile a moment later; a failure is an
/// exit 255 with the reason written to the -E log.
/// </summary>
public sealed class SshStepTests : IDisposable
{
    private const string Alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKSOgzpQ8tnz9zRaK64J/AUNXNzxX+Z9mvoJfWWzm6Bh alice@laptop";
    private const string Bob = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC3G379HZFPn7xp1l+gARvHxJYvPwYbMaz38KJcecZrB bob@desk";

    private const string StandInSshd = """
        #!/bin/sh
        # A stand-in for sshd started as a daemon: records its arguments, then forks a process named sshd
        # (a subshell keeps the script's name) that writes the config's PidFile; or fails as told.
        dir=$(dirname "$0")
        printf '%s\n' "$@" > "$dir/sshd.args"
        config=$2 log=$4
        if [ -e "$dir/sshd.fail" ]; then
          echo "Bind to port 2222 on 0.0.0.0 failed: Address already in use." >> "$log"
          echo "Cannot bind any address." >> "$log"
          exit 255
        fi
        pidfile=$(sed -n 's/^PidFile "\(.*\)"$/\1/p' "$config")
        # It waits on a child, so nothing wakes it meanwhile; TERM ends it after a moment, as sshd closes its
        # listeners (a boot that replaces it must wait for that); a test host that
        # dies before its cleanup (a mutation run) leaves it for two minutes at most.
        ( trap 'sleep 0.3; kill $child; exit 0' TERM; sleep 120 & child=$!; wait $child ) </dev/null >/dev/null 2>&1 &
        daemon=$!
        # The daemon writes its pid a moment after the parent has exited, as sshd's does.
        ( sleep 0.05; echo $daemon > "$pidfile" ) </dev/null >/dev/null 2>&1 &
        echo "Server listening on 0.0.0.0 port 2222." >> "$log"
        """;

    private readonly TempDirectory _dir = new("ssh-step");
    private readonly List<int> _daemons = [];
    private readonly ChangeLog _changes = new();

    public SshStepTests()
    {
        Workspace = _dir.Create("workspace");
        Home = _dir.Create("workspace/home");
        Bin = _dir.Create("bin");
        HomeFixture.Write(Bin, "sshd", StandInSshd + "\n", mode: "755");
        HomeFixture.Symlink(Bin, "/usr/bin/ssh-keygen", "ssh-keygen");
    }

    private string Workspace { get; }

    private string Home { get; }

    private string Bin { get; }

    private string Runtime => _dir["run/packet-agent"];

    private string? RuntimeRefusal() => RuntimeDirectory.Refusal(PosixSystem.Instance, Runtime);

    private string HostKeys => Path.Join(Workspace, ".packet/ssh");

    public void Dispose()
    {
        // TERM: the stand-in's trap ends its child too.
        foreach (int pid in _daemons)
        {
            Syscall.kill(pid, Signum.SIGTERM);
        }

        _dir.Dispose();
    }

    /// <summary>The adapter under the step of the last <see cref="Run"/>: what it fsync'ed.</summary>
    private FaultyPosix _posix = new();

    private StepResult Run(
        bool withWorkspace = true, Hashtable? environment = null, string? keysDirectory = null, SshMode mode = SshMode.Auto, bool rsa = false, string? listen = null, int port = 2222,
        Func<string, EntryOwnership?>? stat = null, string? privilegeSeparation = null, Account? user = null)
    {
        Directory.CreateDirectory(_dir["run"]);
        var variables = environment ?? new Hashtable { ["PUBLIC_KEY"] = Alice };
        variables["PATH"] = Bin;
        var resolver = new CommandResolver(new System.IO.Abstractions.FileSystem(), path => Syscall.access(path, AccessModes.X_OK) == 0);
        var accounts = new RootAt(Home, user);
        _posix = new FaultyPosix();
        var posix = new RecordingPosix(_changes, _posix);
        var step = new SshStep(
            posix, new System.IO.Abstractions.FileSystem(), new RecordingProcessRunner(_changes, new ProcessRunner()), resolver, new ProgramTrust(posix), () => variables,
            new SshPaths(Runtime, privilegeSeparation ?? _dir["run/sshd"]), () => true,
            accounts, new StrictModes(stat ?? SystemAccounts.Stat, SystemAccounts.RealPath, accounts), NullLogger.Instance, TimeProvider.System);
        var options = new BootOptions
        {
            Workspace = Workspace, Home = Home, TerminationLog = _dir["termination-log"], Ssh = mode, SshPort = port, SshKeysDirectory = keysDirectory, SshRsaHostKey = rsa, SshListen = listen,
        };
        StepResult result;
        if (withWorkspace)
        {
            using var workspace = DirectoryHandle.Open(posix, Workspace);
            result = Steps.Run(step, new HomeState(workspace, HomeStatus.Seeded), options, recorded: _changes).Result;
        }
        else
        {
            result = Steps.Run<HomeState?, NoValue>(step, null, options, recorded: _changes).Result;
        }

        if (DaemonPid() is { } pid)
        {
            _daemons.Add(pid);
        }

        Assert.Empty(OpenDescriptors.Under(_dir.Path));
        return result;
    }

    private int? DaemonPid() =>
        File.Exists(Path.Join(Runtime, "sshd.pid")) ? int.Parse(File.ReadAllText(Path.Join(Runtime, "sshd.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture) : null;

    private static bool Alive(int pid) => Syscall.kill(pid, 0) == 0 && File.ReadAllText($"/proc/{pid}/stat").Split(' ')[2] != "Z";

    private static string Fingerprint(string key)
    {
        var listed = ChildProcess.Run("ssh-keygen", ["-l", "-E", "sha256", "-f", key + ".pub"]);
        Assert.True(listed.ExitCode == 0, listed.ToString());
        return listed.StandardOutput.Split(' ')[1];
    }

    private static (uint Uid, uint Gid, FilePermissions Mode) Stat(string path)
    {
        Assert.Equal(0, Syscall.lstat(path, out var stat));
        return (stat.st_uid, stat.st_gid, stat.st_mode & FilePermissions.ALLPERMS);
    }

    private SshState State() => JsonSerializer.Deserialize(File.ReadAllBytes(Path.Join(Workspace, ".packet/ssh.json")), SshJson.Default.SshState)!;

    [RootFact]
    public void A_first_boot_lists_the_keys_makes_host_keys_on_the_volume_writes_the_config_and_starts_sshd()
    {
        Require.Root();

        var result = Run();

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        string fingerprint = Fingerprint(Path.Join(HostKeys, "ssh_host_ed25519_key"));
        int pid = Assert.IsType<int>(DaemonPid());
        string log = Path.Join(Runtime, "sshd.log");
        string keys = Path.Join(Home, ".ssh/authorized_keys");
        Assert.Equal(
            $"sshd (pid {pid}) listening on port 2222 for root; host key {fingerprint}, made now and kept in {HostKeys}; 1 key from the pod in {keys}; log {log}",
            result.Summary);
        Assert.True(Alive(pid));

        Assert.Contains(Alice, File.ReadAllText(keys), StringComparison.Ordinal);
        Assert.Equal((0u, 0u, FilePermissions.S_IRWXU), Stat(Path.Join(Home, ".ssh")));
        Assert.Equal((0u, 0u, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR), Stat(keys));
        Assert.Equal((0u, 0u, FilePermissions.S_IRWXU), Stat(HostKeys));
        Assert.Equal((0u, 0u, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR), Stat(Path.Join(HostKeys, "ssh_host_ed25519_key")));
        Assert.Equal(["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"], Directory.GetFiles(HostKeys).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Join(Runtime, "keygen")));
        Assert.Equal((0u, 0u, FilePermissions.S_IRWXU), Stat(Path.Join(Runtime, "keygen")));
        Assert.False(Directory.Exists(Path.Join(Workspace, ".packet/logs")), "sshd's log went to the volume");

        string config = Path.Join(Runtime, "sshd_config");
        Assert.Equal(["-f", config, "-E", log], File.ReadAllLines(Path.Join(Bin, "sshd.args")));
        Assert.Equal((0u, 0u, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR), Stat(config));
        Assert.Equal((0u, 0u, FilePermissions.S_IRWXU), Stat(Runtime));
        Assert.True(Directory.Exists(_dir["run/sshd"]));
        string rendered = File.ReadAllText(config);
        Assert.Contains("Port 2222\n", rendered, StringComparison.Ordinal);
        // sshd loads a root-only copy in the container's runtime folder (a FAT volume would show the kept key as 0777, which sshd refuses).
        string loaded = Path.Join(Runtime, "host-keys", "ssh_host_ed25519_key");
        Assert.Contains($"\nHostKey \"{loaded}\"\nAuthorizedKeysFile ", rendered, StringComparison.Ordinal);
        Assert.Equal(File.ReadAllBytes(Path.Join(HostKeys, "ssh_host_ed25519_key")), File.ReadAllBytes(loaded));
        Assert.Equal((0u, 0u, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR), Stat(loaded));
        Assert.Equal((0u, 0u, FilePermissions.S_IRWXU), Stat(Path.GetDirectoryName(loaded)!));
        Assert.Contains("\nStrictModes yes\n", rendered, StringComparison.Ordinal);
        Assert.DoesNotContain("ListenAddress", rendered, StringComparison.Ordinal);
        Assert.Contains($"PidFile \"{Path.Join(Runtime, "sshd.pid")}\"\n", rendered, StringComparison.Ordinal);

        Assert.Equal(new SshState(2222, fingerprint, 1, true, pid, log), State());
        Assert.Equal(FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IRGRP | FilePermissions.S_IROTH, Stat(Path.Join(Workspace, ".packet/ssh.json")).Mode);
    }

    [RootFact]
    public void A_second_boot_with_the_same_configuration_leaves_the_running_sshd_alone_and_rewrites_only_the_keys()
    {
        Require.Root();
        Run();
        int first = DaemonPid()!.Value;
        string key = File.ReadAllText(Path.Join(HostKeys, "ssh_host_ed25519_key"));
        File.Delete(Path.Join(Bin, "sshd.args"));

        var result = Run(environment: new Hashtable { ["PUBLIC_KEY"] = Alice, ["SSH_PUBLIC_KEY"] = Bob });

        Assert.Equal(first, DaemonPid());
        Assert.True(Alive(first));
        Assert.False(File.Exists(Path.Join(Bin, "sshd.args")), "sshd was started again");
        Assert.Equal(key, File.ReadAllText(Path.Join(HostKeys, "ssh_host_ed25519_key")));
        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.StartsWith($"sshd (pid {first}) already listening on port 2222 for root with this configuration, left alone; host key {Fingerprint(Path.Join(HostKeys, "ssh_host_ed25519_key"))}, kept in {HostKeys}; 2 keys from the pod", result.Summary, StringComparison.Ordinal);
        Assert.Equal(2, State().Keys);
        Assert.Equal(first, State().Pid);
    }

    [RootFact]
    public void A_host_key_on_the_volume_that_differs_from_the_one_sshd_loaded_replaces_sshd_with_the_volumes()
    {
        Require.Root();
        Run();
        int first = DaemonPid()!.Value;
        string kept = Path.Join(HostKeys, "ssh_host_ed25519_key");
        File.Delete(kept);
        File.Delete(kept + ".pub");
        ChildProcess.MustSucceed("ssh-keygen", "-q", "-t", "ed25519", "-N", string.Empty, "-f", kept);

        var result = Run();

        Assert.NotEqual(first, DaemonPid());
        Assert.Contains($"in place of the sshd (pid {first})", result.Summary, StringComparison.Ordinal);
        Assert.Equal(File.ReadAllBytes(kept), File.ReadAllBytes(Path.Join(Runtime, "host-keys", "ssh_host_ed25519_key")));
        Assert.Contains($"host key {Fingerprint(kept)}, kept in {HostKeys}", result.Summary, StringComparison.Ordinal);
    }

    [RootFact]
    public void A_boot_whose_configuration_changed_replaces_the_sshd_an_earlier_boot_started()
    {
        Require.Root();
        Run();
        int first = DaemonPid()!.Value;

        var result = Run(environment: new Hashtable { ["PUBLIC_KEY"] = Alice, ["HF_TOKEN"] = "hf_new" }, port: 2223);

        int second = DaemonPid()!.Value;
        Assert.NotEqual(first, second);
        Assert.False(Alive(first), "the sshd started by the first boot still runs");
        Assert.True(Alive(second));
        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.StartsWith($"sshd (pid {second}) listening on port 2223 for root, in place of the sshd (pid {first}) an earlier boot started with another configuration (its sessions go on); host key ", result.Summary, StringComparison.Ordinal);
        Assert.Contains("\"HF_TOKEN=hf_new\"", File.ReadAllText(Path.Join(Runtime, "sshd_config")), StringComparison.Ordinal);
    }

    [RootFact]
    public void An_agent_run_from_inside_a_session_of_that_sshd_takes_the_pods_recorded_environment_and_its_own_packet_settings()
    {
        Require.Root();
        Run(environment: new Hashtable { ["PUBLIC_KEY"] = Alice, ["HF_TOKEN"] = "hf_pod", ["PACKET_SSH_PORT"] = "2222" });
        string record = Path.Join(Runtime, "pod-environment");
        var session = new Hashtable
        {
            ["SSH_CONNECTION"] = "127.0.0.1 40000 127.0.0.1 2222", ["PATH"] = "/usr/bin", ["LS_COLORS"] = "di=01;34", ["PACKET_POD_PATH"] = "/usr/bin", ["PACKET_GPU"] = "off",
        };

        var resolved = PodEnvironment.Resolve(new System.IO.Abstractions.FileSystem(), Runtime, RuntimeRefusal, session);
        var outsideSession = PodEnvironment.Resolve(new System.IO.Abstractions.FileSystem(), Runtime, RuntimeRefusal, new Hashtable { ["PATH"] = "/usr/bin" });

        Assert.Equal((0u, 0u, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR), Stat(record));
        Assert.Equal($"{record} (the environment the boot that started sshd pid {DaemonPid()} ran with)", resolved.RecordedBy);
        Assert.Equal(
            ["HF_TOKEN=hf_pod", "PACKET_GPU=off", "PACKET_SSH_PORT=2222", $"PATH={Bin}", $"PUBLIC_KEY={Alice}"],
            resolved.Variables.Cast<DictionaryEntry>().Select(v => $"{v.Key}={v.Value}").Order(StringComparer.Ordinal));
        Assert.Null(outsideSession.RecordedBy);
        Assert.Equal(["PATH"], outsideSession.Variables.Keys.Cast<string>());

        int sshd = DaemonPid()!.Value;
        Syscall.kill(sshd, Signum.SIGTERM);
        for (int i = 0; i < 100 && Alive(sshd); i++)
        {
            Thread.Sleep(10);
        }

        Assert.Same(session, PodEnvironment.Resolve(new System.IO.Abstractions.FileSystem(), Runtime, RuntimeRefusal, session).Variables);
    }

    [RootFact]
    public void A_pid_file_naming_a_process_that_is_not_sshd_is_left_alone_and_replaced()
    {
        Require.Root();
        Directory.CreateDirectory(Runtime);
        using var bystander = System.Diagnostics.Process.Start("sleep", "30");
        File.WriteAllText(Path.Join(Runtime, "sshd.pid"), $"{bystander.Id}\n");
        try
        {
            var result = Run();

            Assert.Equal(StepOutcome.Ok, result.Outcome);
            Assert.True(Alive(bystander.Id), "a process that is not sshd was stopped");
            Assert.NotEqual(bystander.Id, DaemonPid());
        }
        finally
        {
            bystander.Kill();
        }
    }

    [RootFact]
    public void Without_a_volume_the_host_keys_are_temporary_and_nothing_is_recorded_for_status()
    {
        Require.Root();

        var result = Run(withWorkspace: false);

        string hostKeys = Path.Join(Runtime, "host-keys");
        string fingerprint = Fingerprint(Path.Join(hostKeys, "ssh_host_ed25519_key"));
        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.Contains($"host key {fingerprint}, temporary (no volume: clients see a new host key after a restart); 1 key from the pod in {Path.Join(Home, ".ssh/authorized_keys")}; log {Path.Join(Runtime, "sshd.log")}", result.Summary, StringComparison.Ordinal);
        Assert.Equal(FilePermissions.S_IRWXU, Stat(hostKeys).Mode);
        Assert.False(File.Exists(Path.Join(Workspace, ".packet/ssh.json")));
        Assert.False(Directory.Exists(HostKeys));
    }

    [RootFact]
    public void Sshd_that_does_not_start_is_a_warning_in_its_own_words_with_the_config_and_log_named()
    {
        Require.Root();
        File.WriteAllText(Path.Join(Bin, "sshd.fail"), string.Empty);
        string log = Path.Join(Runtime, "sshd.log");
        Directory.CreateDirectory(Runtime, (UnixFileMode)0b111_000_000);
        File.WriteAllText(log, "an earlier boot's line\n");

        var result = Run();

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.Equal(
            $"sshd did not start: Bind to port 2222 on 0.0.0.0 failed: Address already in use. / Cannot bind any address. (config {Path.Join(Runtime, "sshd_config")}, log {log})",
            result.Summary);
        Assert.False(File.Exists(Path.Join(Workspace, ".packet/ssh.json")));
    }

    [RootFact]
    public void Sshd_that_fails_without_a_word_in_its_log_is_named_by_its_exit_code()
    {
        Require.Root();
        File.WriteAllText(Path.Join(Bin, "sshd"), "#!/bin/sh\necho 'no such option' >&2\nexit 3\n");

        var result = Run(keysDirectory: _dir["no-such-keys"]);

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.StartsWith("sshd did not start: exit 3: no such option (config ", result.Summary, StringComparison.Ordinal);
        Assert.EndsWith($"; cannot read the keys in {_dir["no-such-keys"]} (--ssh-keys-dir): Could not find a part of the path '{_dir["no-such-keys"]}'.", result.Summary, StringComparison.Ordinal);
    }

    [RootFact]
    public void Sshd_that_fails_without_a_word_anywhere_is_named_by_its_exit_code_alone()
    {
        Require.Root();
        File.WriteAllText(Path.Join(Bin, "sshd"), "#!/bin/sh\nexit 255\n");

        var result = Run();

        Assert.Equal($"sshd did not start: exit 255 (config {Path.Join(Runtime, "sshd_config")}, log {Path.Join(Runtime, "sshd.log")})", result.Summary);
    }

    [RootFact]
    public void What_a_killed_boot_left_where_ssh_keygen_works_is_removed_first_so_the_new_key_is_made()
    {
        Require.Root();
        string keygen = Path.Join(Runtime, "keygen");
        Directory.CreateDirectory(keygen);
        // ssh-keygen asks before it overwrites a key, and with no one to answer makes none.
        File.WriteAllText(Path.Join(keygen, "ssh_host_ed25519_key"), "half a key");
        File.WriteAllText(Path.Join(keygen, "ssh_host_ed25519_key.pub"), "half a key");

        var result = Run();

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.Contains($"host key {Fingerprint(Path.Join(HostKeys, "ssh_host_ed25519_key"))}, made now", result.Summary, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(keygen));
    }

    [RootFact]
    public void A_fingerprint_ssh_keygen_cannot_give_is_unknown_and_sshd_still_starts()
    {
        Require.Root();
        File.Delete(Path.Join(Bin, "ssh-keygen"));
        HomeFixture.Write(Bin, "ssh-keygen", "#!/bin/sh\n[ \"$1\" = -l ] && { echo SHA256:notakey; exit \"$(cat \"$0.exit\")\"; }\nexec /usr/bin/ssh-keygen \"$@\"\n", mode: "755");
        File.WriteAllText(Path.Join(Bin, "ssh-keygen.exit"), "1");

        var failed = Run();
        File.WriteAllText(Path.Join(Bin, "ssh-keygen.exit"), "0");
        var oneWord = Run();

        Assert.Equal(StepOutcome.Ok, failed.Outcome);
        Assert.Contains("; host key unknown, made now and kept in ", failed.Summary, StringComparison.Ordinal);
        Assert.Equal("unknown", State().HostKeyFingerprint);
        Assert.Contains("; host key unknown, kept in ", oneWord.Summary, StringComparison.Ordinal);
    }

    [RootFact]
    public void A_pid_file_that_cannot_be_removed_stops_the_start_with_the_reason()
    {
        Require.Root();
        Directory.CreateDirectory(Path.Join(Runtime, "sshd.pid"));
        File.WriteAllText(Path.Join(Runtime, "sshd.pid", "inside"), string.Empty);

        var result = Run();

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.StartsWith($"remove {Path.Join(Runtime, "sshd.pid")}: ", result.Summary, StringComparison.Ordinal);
        Assert.EndsWith("; sshd not started", result.Summary, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Join(Bin, "sshd.args")));
    }

    [RootFact]
    public void A_privilege_separation_folder_that_cannot_be_made_stops_the_start_with_the_reason()
    {
        Require.Root();
        File.WriteAllText(_dir["a-file"], string.Empty);

        var result = Run(privilegeSeparation: _dir["a-file/sshd"]);

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.StartsWith($"create directory {_dir["a-file/sshd"]}: ", result.Summary, StringComparison.Ordinal);
        Assert.EndsWith("; sshd not started", result.Summary, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Join(Bin, "sshd.args")));
    }

    [RootFact]
    public void Host_keys_reach_the_volume_durably_and_what_the_runtime_directory_holds_is_not_synced()
    {
        Require.Root();

        Run();

        var synced = _posix.FSynced;
        Assert.Contains(synced, path => path.StartsWith(Path.Join(HostKeys, ".ssh_host_ed25519_key"), StringComparison.Ordinal));
        Assert.Contains(synced, path => path.StartsWith(Path.Join(HostKeys, ".ssh_host_ed25519_key.pub"), StringComparison.Ordinal));
        Assert.DoesNotContain(synced, path => path.StartsWith(Runtime, StringComparison.Ordinal));
        Assert.DoesNotContain(synced, path => path.Contains("ssh.json", StringComparison.Ordinal));
    }

    [RootFact]
    public void A_volume_that_does_not_keep_the_modes_the_agent_set_is_named_as_the_reason_and_another_volume_as_the_fix()
    {
        Require.Root();
        string ssh = Path.Join(Home, ".ssh");
        string keys = Path.Join(ssh, "authorized_keys");
        // What stat shows on a FAT or exFAT volume: every entry the mount's mode, whatever chmod set.
        EntryOwnership? Fat(string path, string shown) =>
            path == shown && SystemAccounts.Stat(path) is { } real ? real with { Mode = (real.Mode & ~(uint)FilePermissions.ALLPERMS) | (uint)FilePermissions.ACCESSPERMS } : SystemAccounts.Stat(path);

        var file = Run(stat: path => Fat(path, keys));
        var folder = Run(stat: path => Fat(path, ssh));

        const string Volume = "for its owner just now: the volume does not keep modes or owners (FAT and exFAT do not); keep the home on a volume that does (ext4, xfs, btrfs, NFS) to log in over SSH";
        Assert.Contains($"sshd will refuse every key in {keys} (StrictModes, kept on): {keys} ", file.Summary, StringComparison.Ordinal);
        Assert.Contains($", although the agent set it to 0600 {Volume}", file.Summary, StringComparison.Ordinal);
        Assert.Contains($"sshd will refuse every key in {keys} (StrictModes, kept on): {ssh} ", folder.Summary, StringComparison.Ordinal);
        Assert.Contains($", although the agent set it to 0700 {Volume}", folder.Summary, StringComparison.Ordinal);
    }

    [RootFact]
    public void Ssh_keygen_that_fails_leaves_sshd_unstarted_and_says_which_key_and_why()
    {
        Require.Root();
        File.Delete(Path.Join(Bin, "ssh-keygen"));
        HomeFixture.Write(Bin, "ssh-keygen", "#!/bin/sh\necho 'Saving key failed: disk full' >&2\nexit 1\n", mode: "755");

        var result = Run();

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.Equal($"ssh-keygen could not make the ed25519 host key in {Path.Join(Runtime, "keygen")}: exit 1: Saving key failed: disk full; sshd not started", result.Summary);
        Assert.False(File.Exists(Path.Join(Bin, "sshd.args")));
        Assert.False(File.Exists(Path.Join(HostKeys, "ssh_host_ed25519_key")));
    }

    [RootFact]
    public void A_home_account_without_an_entry_in_passwd_gets_no_keys_and_no_sshd()
    {
        Require.Root();
        Assert.Equal(0, Syscall.chown(Home, 4242, 4343));

        var result = Run();

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.Equal($"the home's account, uid 4242 (the owner of {Home} in the image), has no entry in /etc/passwd: sshd can log no one in to {Home}; sshd not started", result.Summary);
        Assert.False(Directory.Exists(Path.Join(Home, ".ssh")));
        Assert.False(File.Exists(Path.Join(Bin, "sshd.args")));
    }

    [RootFact]
    public void A_loose_ssh_folder_and_keys_file_are_tightened_the_users_own_lines_kept_and_the_file_given_to_the_homes_owner()
    {
        Require.Root();
        HomeFixture.Write(Home, ".ssh/authorized_keys", Bob + "\n", mode: "644");
        HomeFixture.Chmod(Home, ".ssh", "755");
        Assert.Equal(0, Syscall.chown(Path.Join(Home, ".ssh/authorized_keys"), 0, 4343));

        Run();

        string text = File.ReadAllText(Path.Join(Home, ".ssh/authorized_keys"));
        Assert.StartsWith(Bob + "\n", text, StringComparison.Ordinal);
        Assert.Contains(Alice, text, StringComparison.Ordinal);
        Assert.Equal(FilePermissions.S_IRWXU, Stat(Path.Join(Home, ".ssh")).Mode);
        Assert.Equal((0u, Stat(Home).Gid, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR), Stat(Path.Join(Home, ".ssh/authorized_keys")));
    }

    [RootFact]
    public void A_keys_file_with_another_name_is_replaced_by_the_pods_keys_alone_and_its_other_name_keeps_its_lines()
    {
        Require.Root();
        HomeFixture.Write(Home, ".ssh/authorized_keys", Bob + "\n", mode: "600");
        string other = Path.Join(Home, "elsewhere");
        Assert.Equal(0, Syscall.link(Path.Join(Home, ".ssh/authorized_keys"), other));

        var result = Run();

        string text = File.ReadAllText(Path.Join(Home, ".ssh/authorized_keys"));
        Assert.DoesNotContain(Bob, text, StringComparison.Ordinal);
        Assert.Contains(Alice, text, StringComparison.Ordinal);
        Assert.Equal(Bob + "\n", File.ReadAllText(other));
        Assert.Equal(0, Syscall.lstat(other, out var otherStat));
        Assert.Equal(1ul, otherStat.st_nlink);
        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.Contains($"{Home}/.ssh/authorized_keys was replaced by the pod's keys alone: it had 2 names (a hard link; its other names keep its lines); add your own keys to it again below the block", result.Summary, StringComparison.Ordinal);
    }

    [RootFact]
    public void A_keys_file_of_roots_in_the_users_home_keeps_its_lines_and_is_given_to_the_user()
    {
        Require.Root();
        Assert.Equal(0, Syscall.chown(Home, 4242, 4343));
        HomeFixture.Write(Home, ".ssh/authorized_keys", Bob + "\n", mode: "600");
        Assert.Equal(0, Syscall.chown(Path.Join(Home, ".ssh"), 4242, 4343));

        var result = Run(user: new Account("dev", 4242, 4343, Home));

        string text = File.ReadAllText(Path.Join(Home, ".ssh/authorized_keys"));
        Assert.StartsWith(Bob + "\n", text, StringComparison.Ordinal);
        Assert.Contains(Alice, text, StringComparison.Ordinal);
        Assert.Equal((4242u, 4343u, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR), Stat(Path.Join(Home, ".ssh/authorized_keys")));
        Assert.DoesNotContain("was replaced", result.Summary, StringComparison.Ordinal);
    }

    [RootFact]
    public void A_container_restarted_on_kept_host_keys_loads_them_without_a_folder_for_ssh_keygen()
    {
        Require.Root();
        Run();
        foreach (int pid in _daemons)
        {
            Syscall.kill(pid, Signum.SIGKILL);
        }

        // The container's /run is new at each restart; the volume's keys are kept.
        Directory.Delete(Runtime, recursive: true);
        var result = Run();

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.Contains($"host key {Fingerprint(Path.Join(HostKeys, "ssh_host_ed25519_key"))}, kept in {HostKeys}", result.Summary, StringComparison.Ordinal);
        Assert.Equal(File.ReadAllBytes(Path.Join(HostKeys, "ssh_host_ed25519_key")), File.ReadAllBytes(Path.Join(Runtime, "host-keys", "ssh_host_ed25519_key")));
        Assert.False(Directory.Exists(Path.Join(Runtime, "keygen")));
    }

    [RootFact]
    public void A_keys_file_of_a_third_account_is_replaced_by_the_pods_keys_alone()
    {
        Require.Root();
        HomeFixture.Write(Home, ".ssh/authorized_keys", Bob + "\n", mode: "600");
        Assert.Equal(0, Syscall.chown(Path.Join(Home, ".ssh/authorized_keys"), 4242, 4343));

        var result = Run();

        Assert.DoesNotContain(Bob, File.ReadAllText(Path.Join(Home, ".ssh/authorized_keys")), StringComparison.Ordinal);
        Assert.Equal(0u, Stat(Path.Join(Home, ".ssh/authorized_keys")).Uid);
        Assert.Contains("authorized_keys was replaced by the pod's keys alone: it belonged to uid 4242, not the home's uid 0", result.Summary, StringComparison.Ordinal);
    }

    [RootFact]
    public void A_keys_file_already_right_is_not_rewritten_and_a_wrong_mode_alone_is_fixed()
    {
        Require.Root();
        Run();
        string keys = Path.Join(Home, ".ssh/authorized_keys");
        Assert.Equal(0, Syscall.lstat(keys, out var before));

        Run();

        Assert.Equal(0, Syscall.lstat(keys, out var after));
        Assert.Equal(before.st_ino, after.st_ino);

        Assert.Equal(0, Syscall.chmod(keys, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IROTH));
        Run();

        Assert.Equal(FilePermissions.S_IRUSR | FilePermissions.S_IWUSR, Stat(keys).Mode);
    }

    [RootFact]
    public void A_host_keys_folder_another_account_owns_is_refused_and_nothing_is_written_into_it()
    {
        Require.Root();
        Directory.CreateDirectory(HostKeys);
        HomeFixture.Write(HostKeys, "ssh_host_ed25519_key", "a key the user knows\n", mode: "600");
        Assert.Equal(0, Syscall.chown(HostKeys, 1000, 1000));

        var result = Run();

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.Contains($"refusing {HostKeys}: it belongs to uid 1000, and host keys are kept only where root alone can reach them; sshd not started", result.Summary, StringComparison.Ordinal);
        Assert.Equal(["ssh_host_ed25519_key"], Directory.GetFiles(HostKeys).Select(Path.GetFileName));
        Assert.Equal("a key the user knows\n", File.ReadAllText(Path.Join(HostKeys, "ssh_host_ed25519_key")));
        Assert.Null(DaemonPid());
    }

    [RootFact]
    public void Host_keys_others_could_read_are_replaced_by_new_ones_made_in_private()
    {
        Require.Root();
        Assert.Equal(StepOutcome.Ok, Run().Outcome);
        string key = Path.Join(HostKeys, "ssh_host_ed25519_key");
        string first = Fingerprint(key);
        Assert.Equal(0, Syscall.chmod(HostKeys, FilePermissions.S_IRWXU | FilePermissions.S_IRWXG));

        var result = Run();

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.Contains($"{HostKeys} is not root's alone (0700): its host keys may be known to others, so new ones are made", result.Summary, StringComparison.Ordinal);
        Assert.NotEqual(first, Fingerprint(key));
        Assert.Equal((0u, 0u, FilePermissions.S_IRWXU), Stat(HostKeys));
        Assert.Equal(File.ReadAllBytes(key), File.ReadAllBytes(Path.Join(Runtime, "host-keys", "ssh_host_ed25519_key")));
    }

    [RootFact]
    public void Sshd_logs_into_the_runtime_directory_never_through_a_link_on_the_volume()
    {
        Require.Root();
        string canary = _dir["canary"];
        File.WriteAllText(canary, "untouched\n");
        Directory.CreateDirectory(Path.Join(Workspace, ".packet/logs"));
        File.CreateSymbolicLink(Path.Join(Workspace, ".packet/logs/sshd.log"), canary);

        var result = Run();

        Assert.EndsWith($"; log {Path.Join(Runtime, "sshd.log")}", result.Summary, StringComparison.Ordinal);
        Assert.Equal(Path.Join(Runtime, "sshd.log"), State().Log);
        Assert.Equal(["-f", Path.Join(Runtime, "sshd_config"), "-E", Path.Join(Runtime, "sshd.log")], File.ReadAllLines(Path.Join(Bin, "sshd.args")));
        Assert.Equal("untouched\n", File.ReadAllText(canary));
    }

    [RootFact]
    public void Keys_from_a_secret_folder_are_read_in_name_order_skipping_the_secrets_own_entries_and_huge_files()
    {
        Require.Root();
        string secret = _dir.Create("secret");
        HomeFixture.Write(secret, "b-key", Bob + "\n");
        HomeFixture.Write(secret, "a-key", Alice + "\n");
        HomeFixture.Write(secret, "..data", "ssh-ed25519 AAAA not-a-key\n");
        HomeFixture.Write(secret, "huge", new string('#', (64 * 1024) + 1));

        var result = Run(environment: new Hashtable(), keysDirectory: secret);

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        string text = File.ReadAllText(Path.Join(Home, ".ssh/authorized_keys"));
        Assert.True(text.IndexOf(Alice, StringComparison.Ordinal) < text.IndexOf(Bob, StringComparison.Ordinal), text);
        Assert.Contains("; 2 keys from the pod", result.Summary, StringComparison.Ordinal);
    }

    [RootFact]
    public void Variables_that_sessions_cannot_be_given_are_named_in_the_summary()
    {
        Require.Root();

        var result = Run(environment: new Hashtable { ["PUBLIC_KEY"] = Alice, ["PEM"] = "line one\nline two" });

        Assert.EndsWith("; not given to sessions (a newline in the value, or not a name): PEM", result.Summary, StringComparison.Ordinal);
        Assert.DoesNotContain("PEM", File.ReadAllText(Path.Join(Runtime, "sshd_config")), StringComparison.Ordinal);
    }

    [RootFact]
    public void A_malformed_key_is_a_warning_after_sshd_started_and_the_good_key_is_listed()
    {
        Require.Root();

        var result = Run(environment: new Hashtable { ["PUBLIC_KEY"] = $"{Alice}\nnot a key" });

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.StartsWith($"sshd (pid {DaemonPid()}) listening on port 2222 for root;", result.Summary, StringComparison.Ordinal);
        Assert.Contains("; 1 key from the pod", result.Summary, StringComparison.Ordinal);
        Assert.Contains("PUBLIC_KEY line 2", result.Summary, StringComparison.Ordinal);
    }

    [RootFact]
    public void Auto_without_a_key_anywhere_writes_nothing_makes_no_host_key_and_starts_nothing()
    {
        Require.Root();

        var result = Run(environment: new Hashtable { ["PUBLIC_KEY"] = string.Empty });

        Assert.Equal(StepOutcome.Skipped, result.Outcome);
        Assert.StartsWith($"no key to let in: PUBLIC_KEY, SSH_PUBLIC_KEY and --ssh-keys-dir give none, and {Path.Join(Home, ".ssh/authorized_keys")} holds none; sshd not started", result.Summary, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Join(Home, ".ssh")));
        Assert.False(Directory.Exists(Path.Join(Workspace, ".packet")));
        Assert.False(Directory.Exists(Runtime));
        Assert.False(File.Exists(Path.Join(Bin, "sshd.args")));
    }

    [RootFact]
    public void Auto_without_a_key_from_the_pod_removes_the_keys_an_earlier_boot_took_from_it_and_keeps_the_rest()
    {
        Require.Root();
        string keys = Path.Join(Home, ".ssh/authorized_keys");
        HomeFixture.Write(Home, ".ssh/authorized_keys", $"# mine\n{AuthorizedKeysBlock.Start}\n{Alice}\n{AuthorizedKeysBlock.End}\n", mode: "600");

        var result = Run(environment: new Hashtable());

        Assert.Equal(StepOutcome.Skipped, result.Outcome);
        Assert.EndsWith($"; removed the 1 key an earlier boot took from the pod from {keys}", result.Summary, StringComparison.Ordinal);
        Assert.Equal("# mine\n", File.ReadAllText(keys));
        Assert.False(File.Exists(Path.Join(Bin, "sshd.args")));
    }

    [RootFact]
    public void A_key_the_user_added_by_hand_starts_sshd_in_auto_without_one_from_the_pod()
    {
        Require.Root();
        HomeFixture.Write(Home, ".ssh/authorized_keys", $"no-pty {Bob}\n", mode: "600");

        var result = Run(environment: new Hashtable());

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.StartsWith($"sshd (pid {DaemonPid()}) listening on port 2222 for root;", result.Summary, StringComparison.Ordinal);
        Assert.Contains("; 0 keys from the pod in ", result.Summary, StringComparison.Ordinal);
        Assert.Equal($"no-pty {Bob}\n", File.ReadAllText(Path.Join(Home, ".ssh/authorized_keys")));
    }

    [RootFact]
    public void An_rsa_host_key_and_a_listen_address_are_given_to_sshd_only_when_asked()
    {
        Require.Root();

        var result = Run(rsa: true, listen: "127.0.0.1");

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.StartsWith($"sshd (pid {DaemonPid()}) listening on 127.0.0.1 port 2222 for root;", result.Summary, StringComparison.Ordinal);
        string rendered = File.ReadAllText(Path.Join(Runtime, "sshd_config"));
        string loaded = Path.Join(Runtime, "host-keys");
        Assert.Contains($"Port 2222\nListenAddress 127.0.0.1\nHostKey \"{Path.Join(loaded, "ssh_host_ed25519_key")}\"\nHostKey \"{Path.Join(loaded, "ssh_host_rsa_key")}\"\n", rendered, StringComparison.Ordinal);
        Assert.Equal((0u, 0u, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR), Stat(Path.Join(HostKeys, "ssh_host_rsa_key")));
        Assert.Equal("127.0.0.1", State().ListenAddress);
    }

    [RootFact]
    public void A_home_writable_by_others_is_a_warning_naming_it_and_the_fix_and_sshd_keeps_its_strict_modes()
    {
        Require.Root();
        Assert.Equal(0, Syscall.chmod(Home, FilePermissions.ACCESSPERMS));

        var result = Run();

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.EndsWith(
            $"; sshd will refuse every key in {Path.Join(Home, ".ssh/authorized_keys")} (StrictModes, kept on): {Home} is mode 0777, writable by everyone; fix: chmod go-w {Home}, and give it to root or the account that logs in",
            result.Summary,
            StringComparison.Ordinal);
        Assert.Contains("\nStrictModes yes\n", File.ReadAllText(Path.Join(Runtime, "sshd_config")), StringComparison.Ordinal);
    }

    [RootFact]
    public void A_group_writable_home_is_named_with_the_fsgroup_fix_unless_its_group_holds_the_account_alone()
    {
        Require.Root();
        Assert.Equal(0, Syscall.chown(Home, 0, 4343));
        Assert.Equal(0, Syscall.chmod(Home, FilePermissions.S_IRWXU | FilePermissions.S_IRWXG | FilePermissions.S_ISGID));

        var result = Run();

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.EndsWith($"{Home} is mode 2770, writable by its group (gid 4343), which holds other accounts than uid 0; fix: chmod g-w {Home} (a pod's securityContext.fsGroup makes the volume group-writable again at every mount unless fsGroupChangePolicy is OnRootMismatch)", result.Summary, StringComparison.Ordinal);
    }

    /// <summary>Root's account with its home at the test's home, as in a pod whose live home is linked to the persisted one; every other account and group from the machine's database.</summary>
    /// <summary>The machine's accounts, with root's home (or <paramref name="user"/>'s, when given) at the test's.</summary>
    private sealed class RootAt(string home, Account? user = null) : IAccounts
    {
        public Account? ByUid(uint uid) => uid == 0 ? new Account("root", 0, 0, user is null ? home : "/root") : uid == user?.Uid ? user : SystemAccounts.Instance.ByUid(uid);

        public Account? ByHome(string path) => path == home ? user ?? ByUid(0) : SystemAccounts.Instance.ByHome(path);

        public bool HoldsOnly(uint gid, uint uid, uint owner) => SystemAccounts.Instance.HoldsOnly(gid, uid, owner);
    }
}

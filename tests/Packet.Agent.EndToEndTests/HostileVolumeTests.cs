using System.Text.Json;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>
/// The volume's user tries to become root: each test lets uid 1000 prepare the volume with one
/// attack (<see cref="HostileVolume"/>), then boots the published binary as root. A planted program
/// that runs as root, or a canary that changes, fails the test; the boot must still finish, with a
/// warning that names what it refused and how to fix it.
/// </summary>
public sealed class HostileVolumeTests : IDisposable
{
    private readonly HostileVolume _volume = new();

    public void Dispose() => _volume.Dispose();

    private string W => _volume.Workspace;

    /// <summary>A planted program of this name in a folder, the user's.</summary>
    private string Plant(string folder, string name) => $"cat > {folder}/{name} <<'EOF'\n{_volume.Planted(name)}EOF\nchmod 755 {folder}/{name}\n";

    [RootFact]
    public void Programs_planted_on_the_volume_under_the_names_root_runs_never_run_as_root()
    {
        Require.Root();
        _volume.SeedAsAPodWould();
        string[] names = ["sshd", "ssh-keygen", "nvidia-smi", "python3", "pip", "sh"];
        _volume.AsUser(
            $"mkdir -p {W}/bin {W}/venv/bin {_volume.PersistedHome}/.ssh\n"
            + string.Concat(names.Select(name => Plant($"{W}/bin", name) + Plant($"{W}/venv/bin", name)))
            + $"echo '{_volume.ClientKey}' > {_volume.PersistedHome}/.ssh/authorized_keys\n"
            + $"printf 'nothing==1.0\\n' > {W}/requirements.txt\n");

        var boot = _volume.Boot(environment: new Dictionary<string, string?> { ["PIP_NO_INDEX"] = "1" });

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Empty(_volume.RunsAsRoot);
        Assert.Contains($"passed over {W}/venv/bin/sshd (it is on the volume at {W}, and root runs the image's own); {W}/bin/sshd (it is on the volume at {W}, and root runs the image's own)", Line(boot, "warn: ssh[7]"), StringComparison.Ordinal);
        Assert.Contains($"passed over {W}/venv/bin/ssh-keygen (it is on the volume at {W}, and root runs the image's own)", Line(boot, "warn: ssh[7]"), StringComparison.Ordinal);
        Said(boot, "warn: ssh[7] sshd (pid ");
        Assert.Contains($"passed over {W}/venv/bin/sh (", Line(boot, "warn: exec[8]"), StringComparison.Ordinal);
        Assert.Contains($"passed over {W}/venv/bin/nvidia-smi (it is on the volume at {W}, and root runs the image's own)", Line(boot, "warn: gpu[5]"), StringComparison.Ordinal);
        Assert.Contains("root runs no program another account could have changed", Line(boot, "warn: exec[8]"), StringComparison.Ordinal);
        // The hooks are the user's: its own venv and pip are its business, and run as it.
        Assert.NotEmpty(_volume.Runs);
        Assert.All(_volume.Runs, run => Assert.EndsWith($" {HostileVolume.User}", run, StringComparison.Ordinal));
    }

    [RootFact]
    public void A_root_home_on_a_volume_others_can_write_runs_nothing_from_the_volume_as_root()
    {
        Require.Root();
        ChildProcess.MustSucceed("chown", "-R", "0:0", _volume.ImageHome);
        _volume.SeedAsAPodWould();
        // bin is root's here, but the volume's top is the user's group's to rename in (fsGroup).
        _volume.AsUser(
            $"mv {W}/bin {W}/roots-bin\nmkdir {W}/bin\n" + Plant(W, "setup.sh") + Plant($"{W}/bin", "python3")
            + $"printf 'nothing==1.0\\n' > {W}/requirements.txt\n");

        var boot = _volume.Boot();

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Empty(_volume.RunsAsRoot);
        string hooks = Line(boot, "warn: hooks[6]");
        Assert.Contains($"setup.sh not run as root: {W} is writable by its group (gid {HostileVolume.User}) (mode 2775), who could put anything there; "
            + "root runs nothing another account could have changed (make it and the folders above it root's, writable by root alone, or run hooks as a user: --user)", hooks, StringComparison.Ordinal);
        Assert.Contains($"pip install -r requirements.txt not run as root: {W} is writable by its group (gid {HostileVolume.User})", hooks, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Join(W, "venv")));
    }

    [RootFact]
    public void A_root_homes_pip_reads_no_requirements_and_makes_no_venv_the_user_could_change()
    {
        Require.Root();
        ChildProcess.MustSucceed("chown", "-R", "0:0", _volume.ImageHome);
        _volume.SeedAsAPodWould();
        // The volume's top is root's alone here; what an operator once gave the user is still the user's.
        ChildProcess.MustSucceed("chmod", "755", W);
        string requirements = Path.Join(W, "requirements.txt");
        File.WriteAllText(requirements, "nothing==1.0\n");
        ChildProcess.MustSucceed("chown", $"{HostileVolume.User}:{HostileVolume.User}", requirements);
        _volume.AsUser($"echo '--index-url http://127.0.0.1:9/' > {requirements}");

        var boot = _volume.Boot();

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Contains($"pip install -r requirements.txt not run as root: {requirements} belongs to uid {HostileVolume.User}, not root", Line(boot, "warn: hooks[6]"), StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Join(W, "venv")), "root made a venv to install the user's requirements into");

        // Root's own requirements, and a venv folder of the user's without a python yet: root makes no venv there.
        File.Delete(requirements);
        File.WriteAllText(requirements, "nothing==1.0\n");
        Directory.CreateDirectory(Path.Join(W, "venv"));
        ChildProcess.MustSucceed("chown", $"{HostileVolume.User}:{HostileVolume.User}", Path.Join(W, "venv"));
        var again = _volume.Boot();

        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Empty(_volume.Runs);
        Assert.Contains($"pip install -r requirements.txt not run as root: {W}/venv belongs to uid {HostileVolume.User}, not root", Line(again, "warn: hooks[6]"), StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Join(W, "venv/bin")), "root made a venv in the user's folder");
    }

    [RootFact]
    public void Hooks_a_third_account_wrote_do_not_run_as_the_homes_account()
    {
        Require.Root();
        _volume.SeedAsAPodWould();
        const uint Third = HostileVolume.User + 1;
        _volume.AsUser(Plant($"{_volume.State}/boot.d", "10-users"));
        foreach (string folder in new[] { "first-boot.d", "boot.d" })
        {
            HomeFixture.Write(_volume.State, $"{folder}/20-third", _volume.Planted("20-third"), mode: "755");
        }

        ChildProcess.MustSucceed("chown", "-R", $"{Third}:{Third}", Path.Join(_volume.State, "first-boot.d"), Path.Join(_volume.State, "boot.d/20-third"));

        var boot = _volume.Boot();

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Equal([$"10-users {HostileVolume.User}"], _volume.Runs);
        string hooks = Line(boot, "warn: hooks[6]");
        Assert.Contains($"the hooks in {_volume.State}/first-boot.d not run as uid {HostileVolume.User}: {_volume.State}/first-boot.d belongs to uid {Third}", hooks, StringComparison.Ordinal);
        Assert.Contains($"boot.d/20-third not run as uid {HostileVolume.User}: {_volume.State}/boot.d/20-third belongs to uid {Third}", hooks, StringComparison.Ordinal);
    }

    [RootFact]
    public void A_root_folder_renamed_to_home_gets_neither_hooks_run_as_root_nor_the_pods_keys()
    {
        Require.Root();
        _volume.SeedAsAPodWould();
        // mkfs.ext4 makes lost+found, root's, at the top of every ext4 volume.
        Directory.CreateDirectory(Path.Join(W, "lost+found"));
        ChildProcess.MustSucceed("chmod", "700", Path.Join(W, "lost+found"));
        _volume.AsUser($"mv {W}/home {W}/mine\nmv {W}/lost+found {W}/home\n" + Plant(W, "setup.sh") + Plant($"{_volume.State}/boot.d", "10-hook"));

        var boot = _volume.Boot();

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Empty(_volume.Runs);
        Said(boot, $"warn: hooks[6] hooks not run: {W}/home belongs to uid 0, but the hooks' account is uid {HostileVolume.User} (the owner of {_volume.ImageHome} in the image); "
            + $"a user of the volume can rename or link any folder to home, so hooks never take their account from it. If the home is right, give it to its account: chown -R {HostileVolume.User}:{HostileVolume.User} {W}/home");
        Said(boot, $"warn: ssh[7] {W}/home belongs to uid 0, not to the home's account, uid {HostileVolume.User}");
        Assert.False(Directory.Exists(Path.Join(W, "home", ".ssh")), "the pod's keys went into root's folder");
    }

    [RootFact]
    public void A_home_replaced_by_a_link_is_not_followed_and_runs_no_hooks()
    {
        Require.Root();
        _volume.SeedAsAPodWould();
        _volume.AsUser($"mv {W}/home {W}/mine\nln -s {_volume.CanaryDirectory} {W}/home\n" + Plant(W, "setup.sh"));

        var boot = _volume.Boot();

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Empty(_volume.Runs);
        Assert.True(_volume.CanaryUnchanged);
        Said(boot, $"warn: hooks[6] hooks not run: {W}/home is not a directory (a link, or a file), but the hooks' account is uid {HostileVolume.User}");
        Said(boot, $"refusing {W}/home: it is a symlink");
    }

    [RootFact]
    public void A_state_folder_an_older_agent_gave_the_user_is_taken_back_and_nothing_planted_in_it_is_followed_or_used()
    {
        Require.Root();
        _volume.SeedAsAPodWould();
        ChildProcess.MustSucceed("chown", "-R", $"{HostileVolume.User}:{HostileVolume.User}", _volume.State);
        string known = Path.Join(_volume.State, "ssh", "ssh_host_ed25519_key");
        _volume.AsUser(
            $"rm -rf {_volume.State}/ssh {_volume.State}/logs\nmkdir -p {_volume.State}/ssh {_volume.State}/logs\n"
            + $"ln -s {_volume.Canary} {_volume.State}/logs/sshd.log\n"
            + $"ssh-keygen -q -t ed25519 -N '' -f {known}\n"
            + $"ln -s {_volume.UserCanary} {_volume.State}/ssh/ssh_host_rsa_key.pub\n"
            + $"ln -s {_volume.Canary} {_volume.State}/ssh.json\n");
        string userKnows = HostileVolume.Fingerprint(known + ".pub");
        // A login under a user name holding a newline: sshd writes it into its log.
        string login = $"/usr/bin/ssh -F /dev/null -i {_volume["client"]} -p {_volume.Port} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 \"$(printf 'x\\nevil')\"@127.0.0.1 true; exit 0";

        var boot = _volume.Boot(login, ["--ssh-rsa-host-key"]);

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.True(_volume.CanaryUnchanged, "a link planted for root was followed");
        Said(boot, $"info: guard[1] workspace {W} is present; took {_volume.State} back from another account (it belongs to uid {HostileVolume.User})");
        Assert.Equal(0u, HostileVolume.OwnerOf(_volume.State));
        Assert.Equal(HostileVolume.User, HostileVolume.OwnerOf(Path.Join(_volume.State, $"user-{HostileVolume.User}", "ssh")));
        string fingerprint = JsonDocument.Parse(File.ReadAllText(Path.Join(_volume.State, "ssh.json"))).RootElement.GetProperty("host_key_fingerprint").GetString()!;
        Assert.NotEqual(userKnows, fingerprint);
        Assert.Equal(fingerprint, HostileVolume.Fingerprint(known + ".pub"));
        Assert.Equal(0u, HostileVolume.OwnerOf(known));
    }

    [RootFact]
    public void A_state_folder_replaced_by_a_link_is_moved_aside_unfollowed()
    {
        Require.Root();
        _volume.SeedAsAPodWould();
        _volume.AsUser($"mv {_volume.State} {W}/old-state\nln -s {_volume.CanaryDirectory} {_volume.State}\n");

        var boot = _volume.Boot();

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.True(_volume.CanaryUnchanged);
        Said(boot, $"moved {_volume.State} aside (it is a symlink, not a directory); made {_volume.State} (root's)");
        Assert.Equal(0u, HostileVolume.OwnerOf(_volume.State));
    }

    [RootFact]
    public void A_hook_folder_replaced_by_a_link_runs_nothing_from_where_it_points()
    {
        Require.Root();
        _volume.SeedAsAPodWould();
        ChildProcess.MustSucceed("chown", $"{HostileVolume.User}:{HostileVolume.User}", _volume.State);
        _volume.AsUser($"mkdir -p {W}/elsewhere\n" + Plant($"{W}/elsewhere", "10-hook") + $"rm -rf {_volume.State}/boot.d\nln -s {W}/elsewhere {_volume.State}/boot.d\n");

        var boot = _volume.Boot();

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Empty(_volume.Runs);
        Said(boot, $"moved {_volume.State}/boot.d aside, unread (it is a symlink)");
    }

    [RootFact]
    public void Fifos_and_hard_links_in_place_of_every_file_root_reads_or_writes_hang_nothing_and_change_nothing()
    {
        Require.Root();
        _volume.SeedAsAPodWould();
        string[] files = ["lock", "last-boot.json", "last-boot.1.json", "last-boot.2.json", "last-boot.3.json", "last-boot.warnings", "image-manifest", "hooks.json", "ssh.json"];
        ChildProcess.MustSucceed("chown", "-R", $"{HostileVolume.User}:{HostileVolume.User}", _volume.State);
        _volume.AsUser(
            string.Concat(files.Select((name, i) => $"rm -f {_volume.State}/{name}\n" + (i % 2 == 0 ? $"mkfifo {_volume.State}/{name}\n" : $"ln {_volume.UserCanary} {_volume.State}/{name}\n")))
            + $"rm -rf {_volume.State}/logs\nmkdir {_volume.State}/logs\nmkfifo {_volume.State}/logs/setup.sh.log\n" + Plant(W, "setup.sh"));

        var first = _volume.Boot();
        // A kernel without protected_hardlinks lets root's own files be linked; root's state then holds them.
        foreach (string name in files)
        {
            File.Delete(Path.Join(_volume.State, name));
            HomeFixture.Check(Mono.Unix.Native.Syscall.link(_volume.Canary, Path.Join(_volume.State, name)));
        }

        var second = _volume.Boot();

        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.True(_volume.CanaryUnchanged, "a hard link planted for root was written through");
        Said(second, "boot finished");
        Assert.All(_volume.Runs, run => Assert.Equal($"setup.sh {HostileVolume.User}", run));
    }

    [RootFact]
    public void Status_as_root_reads_no_report_another_account_could_write_and_waits_on_no_fifo()
    {
        Require.Root();
        _volume.SeedAsAPodWould();
        string forged = _volume["forged.json"];
        File.WriteAllText(forged, System.Text.RegularExpressions.Regex.Replace(
            File.ReadAllText(Path.Join(_volume.State, "last-boot.json")), "\"started_at\":\"[^\"]*\"", "\"started_at\":\"2099-01-01T00:00:00Z\"").Replace("\"ok\"", "\"FORGED\""));
        ChildProcess.MustSucceed("chown", "-R", $"{HostileVolume.User}:{HostileVolume.User}", _volume.State);
        _volume.AsUser($"rm -f {_volume.State}/last-boot.json\nmkfifo {_volume.State}/last-boot.json\n");
        string agent = ChildProcess.Quote(RepositoryPaths.AgentBinary);

        // A runtime directory of each of two users in the container's /tmp: a forged report newer than any boot, and a FIFO.
        var status = _volume.InContainer(
            $"mkdir -m 700 /tmp/packet-agent-{HostileVolume.User} /tmp/packet-agent-1001 && chown {HostileVolume.User} /tmp/packet-agent-{HostileVolume.User} && chown 1001 /tmp/packet-agent-1001"
            + $" && {HostileVolume.As(HostileVolume.User, $"cp {forged} /tmp/packet-agent-{HostileVolume.User}/last-boot.json")}"
            + $" && {HostileVolume.As(1001, "mkfifo /tmp/packet-agent-1001/last-boot.json")}"
            + $" && exec {agent} status --workspace {W} --home {_volume.ImageHome}",
            TimeSpan.FromSeconds(30));

        Assert.DoesNotContain("FORGED", status.StandardOutput);
        Assert.Contains($"status could not look inside: refusing {_volume.State}: it belongs to uid {HostileVolume.User} (root keeps its state only where no other account can write; a root boot takes it back)", status.StandardOutput);
    }

    [RootFact]
    public void A_session_record_another_account_made_first_is_not_taken_by_the_users_agent()
    {
        Require.Root();
        _volume.SeedAsAPodWould();
        string runtime = $"/tmp/packet-agent-{HostileVolume.User}";
        string agent = ChildProcess.Quote(RepositoryPaths.AgentBinary);
        // nobody makes the user's runtime directory first: a config, a running "sshd" started with it, and the pod's "environment".
        string plant = string.Join(" && ",
            $"mkdir -m 755 {runtime}",
            $"printf '# config\n' > {runtime}/sshd_config",
            $"printf 'PATH=/evil:/usr/bin:/bin\\0PACKET_GPU=off\\0' > {runtime}/pod-environment",
            $"printf '#!/bin/sh\nsleep 60\n' > {runtime}/sshd && chmod 755 {runtime}/sshd",
            $"({runtime}/sshd -f {runtime}/sshd_config & echo $! > {runtime}/sshd.pid)");

        var boot = _volume.InContainer(
            $"{HostileVolume.As(Platform.Nobody, $"/bin/sh -c {ChildProcess.Quote(plant)}")}"
            + $" && SSH_CONNECTION='127.0.0.1 1 127.0.0.1 22' {HostileVolume.As(HostileVolume.User, $"{agent} boot --workspace {W} --home {_volume.PersistedHome} --gpu off --ssh off -- sh -c 'echo PATH=$PATH'")}");

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.DoesNotContain("/evil", boot.StandardOutput);
        Said(boot, $"warn: boot[0] inside an SSH session, but the pod's recorded environment is not used: the runtime directory {runtime} belongs to uid {Platform.Nobody}, not to the agent's user (uid {HostileVolume.User}): another account made it, so nothing in it is used");
    }

    [RootFact]
    public void A_runtime_directory_another_account_made_first_gets_no_secret()
    {
        Require.Root();
        _volume.SeedAsAPodWould();
        string planted = Path.Join(W, "planted-run");
        _volume.AsUser($"mkdir -m 777 {planted}\n");

        var boot = _volume.Boot(environment: new Dictionary<string, string?> { ["PACKET_RUNTIME_DIR"] = planted, ["HF_TOKEN"] = "hf_secret" });

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Empty(Directory.GetFileSystemEntries(planted));
        Said(boot, $"warn: ssh[7] the runtime directory {planted} belongs to uid {HostileVolume.User}, not to the agent's user (uid 0): another account made it, so nothing in it is used; sshd not started");
    }

    /// <summary>The boot's log says <paramref name="text"/>; else the whole log is shown.</summary>
    private static void Said(ChildResult boot, string text) => Assert.True(boot.StandardError.Contains(text, StringComparison.Ordinal), $"not said: {text}\n{boot}");

    /// <summary>The one log line that starts with <paramref name="prefix"/> (after the timestamp).</summary>
    private static string Line(ChildResult boot, string prefix) =>
        boot.ErrorLines.SingleOrDefault(line => line.Length > 25 && line[25..].StartsWith(prefix, StringComparison.Ordinal)) ?? throw new Xunit.Sdk.XunitException($"no line starting with {prefix}:\n{boot}");
}

using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Mono.Unix.Native;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>
/// One pod with the real openssh-server and client from Debian. Each boot is a new container: a
/// private mount namespace with its own tmpfs at /run (where the agent keeps sshd's config and pid),
/// and an /etc/passwd bound over the machine's whose root account has a scratch home, so that
/// sshd's sessions land in this test's directories and never in the machine's /root. sshd listens
/// on a free port of this machine; the client connects over 127.0.0.1 with its own key and
/// known_hosts file.
/// </summary>
public sealed class SshPod : IDisposable
{
    private readonly TempDirectory _dir = new("ssh");
    private readonly List<int> _sshds = [];

    /// <param name="loginToLiveHome">Root's home in the pod's passwd is the live home (no volume); else the persisted home, as when the volume's home is mounted at the live home.</param>
    /// <param name="user">The account that owns the home: root, or a user uid 1000 added to the pod's passwd (the image's USER).</param>
    /// <param name="workspace">A volume mounted elsewhere to use as the workspace; a directory of the pod's own otherwise.</param>
    public SshPod(bool loginToLiveHome = false, string user = "root", string? workspace = null)
    {
        Workspace = workspace ?? _dir.Create("workspace");
        Home = _dir.Create("home");
        File.Copy("/etc/skel/.profile", Path.Join(Home, ".profile"));
        File.Copy("/etc/skel/.bashrc", Path.Join(Home, ".bashrc"));
        HomeFixture.Write(Workspace, "bin/mytool", "#!/bin/sh\necho mytool from the volume\n", mode: "755");
        ImageBin = _dir.Create("image-bin");
        HomeFixture.Write(ImageBin, "imagetool", "#!/bin/sh\necho imagetool from the image\n", mode: "755");
        Port = FreePort();
        ClientKey = NewKey("client");
        string home = loginToLiveHome ? Home : PersistedHome;
        User = user;
        var passwd = File.ReadAllLines("/etc/passwd").Select(line => line.StartsWith("root:", StringComparison.Ordinal) && user == "root" ? PasswdWithHome(line, home) : line).ToList();
        if (user != "root")
        {
            passwd.Add($"{user}:x:{NonRootUid}:{NonRootUid}::{home}:/bin/bash");
            ChildProcess.MustSucceed("chown", "-R", $"{NonRootUid}:{NonRootUid}", Home);
        }

        File.WriteAllLines(_dir["passwd"], passwd);
    }

    public const int NonRootUid = 1000;

    public string Workspace { get; }

    public string User { get; }

    public string Home { get; }

    public string PersistedHome => Path.Join(Workspace, "home");

    /// <summary>A directory on the image's PATH (as /usr/local/cuda/bin is), which an SSH login must keep.</summary>
    public string ImageBin { get; }

    public int Port { get; }

    /// <summary>The client's public key line.</summary>
    public string ClientKey { get; }

    public string this[string relative] => _dir[relative];

    /// <summary>A new ed25519 key pair under <paramref name="name"/>; its public line.</summary>
    public string NewKey(string name)
    {
        ChildProcess.MustSucceed("ssh-keygen", "-q", "-t", "ed25519", "-N", string.Empty, "-C", $"{name}@test", "-f", _dir[name]);
        return File.ReadAllText(_dir[name + ".pub"]).Trim();
    }

    /// <summary>
    /// packet-agent boot in a new container (see the class): <c>/run/.containerenv</c> there tells the
    /// agent it is inside one, as podman's does, so <c>--ssh auto</c> (the default) acts as in a pod.
    /// <paramref name="hideSshd"/> mounts an empty tmpfs over /usr/sbin there: an image without
    /// openssh-server. <paramref name="ownNetwork"/> gives the container a network of its own (as a
    /// pod has), whose listening sockets are listed after the boot from its /proc/net/tcp and tcp6
    /// (<see cref="Listening"/>), and any sshd the boot started there is stopped with it.
    /// </summary>
    public ChildResult Boot(IDictionary<string, string?> environment, string[]? options = null, bool hideSshd = false, string? workspace = null, bool ownNetwork = false, bool defaultPort = false)
    {
        string[] port = defaultPort ? [] : ["--ssh-port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture)];
        string[] boot = [RepositoryPaths.AgentBinary, "boot", "--workspace", workspace ?? Workspace, "--home", Home, "--gpu", "off", .. port, .. options ?? []];
        string run = string.Join(' ', boot.Select(ChildProcess.Quote));
        string script = string.Join(" && ",
            "mount -t tmpfs tmpfs /run",
            "touch /run/.containerenv",
            $"mount --bind {ChildProcess.Quote(_dir["passwd"])} /etc/passwd",
            hideSshd ? "mount -t tmpfs tmpfs /usr/sbin" : "true",
            ownNetwork
                ? $"{{ {run}; status=$?; echo '--- listening'; awk '$4 == \"0A\" {{ print $2 }}' /proc/net/tcp /proc/net/tcp6; "
                  + "if [ -f /run/packet-agent/sshd.pid ]; then kill \"$(cat /run/packet-agent/sshd.pid)\"; fi; exit $status; }"
                : "exec " + run);
        var variables = new Dictionary<string, string?>(environment)
        {
            // The sandbox turns SSH off for every other test; a pod boots with the default unless a test says otherwise.
            ["PACKET_SSH"] = environment.TryGetValue("PACKET_SSH", out string? mode) ? mode : "auto",

            // The container's own /run (a tmpfs of its mount namespace), not the test run's shared runtime directory.
            ["PACKET_RUNTIME_DIR"] = "/run/packet-agent",

            // The test host may itself run in an SSH session: the boot is in one only when a test says so.
            ["SSH_CONNECTION"] = environment.TryGetValue("SSH_CONNECTION", out string? session) ? session : null,
            ["PATH"] = $"{ImageBin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        };
        string[] unshare = ownNetwork ? ["--mount", "--net", "--propagation", "private"] : ["--mount", "--propagation", "private"];
        var result = ChildProcess.Run("unshare", [.. unshare, "/bin/sh", "-c", script], variables, TimeSpan.FromSeconds(60));
        // Without a volume there is no record: the pid comes from the step's line.
        if (!ownNetwork && Regex.Match(result.StandardError, @"ssh\[7\] sshd \(pid (\d+)\)") is { Success: true } started)
        {
            _sshds.Add(int.Parse(started.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        }

        return result;
    }

    /// <summary>The local addresses (hex, as the kernel lists them) a boot with its own network left listening.</summary>
    public static IReadOnlyList<string> Listening(ChildResult boot) =>
        boot.StandardOutput.Split("--- listening\n", 2) is [_, var listed] ? listed.Split('\n', StringSplitOptions.RemoveEmptyEntries) : throw new InvalidOperationException($"the boot's listing is missing: {boot}");

    /// <summary>The SSH step's record for status, or null.</summary>
    public JsonElement? State()
    {
        string path = Path.Join(Workspace, ".packet", "ssh.json");
        return File.Exists(path) ? JsonDocument.Parse(File.ReadAllText(path)).RootElement.Clone() : null;
    }

    /// <summary>The container is gone: its sshd with it.</summary>
    public void Stop()
    {
        foreach (int pid in _sshds)
        {
            if (Syscall.kill(pid, Signum.SIGTERM) == 0)
            {
                for (int i = 0; i < 100 && Syscall.kill(pid, 0) == 0; i++)
                {
                    Thread.Sleep(20);
                }
            }
        }

        _sshds.Clear();
    }

    /// <summary>ssh root@127.0.0.1 with <paramref name="key"/>; with <paramref name="input"/>, an interactive login on a terminal that reads it.</summary>
    public ChildResult Ssh(string? command, string key = "client", string? input = null, bool strictHostKey = false, string? user = null, int? port = null)
    {
        string[] options =
        [
            "-F", "/dev/null", "-i", _dir[key], "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            "-o", $"UserKnownHostsFile={_dir["known_hosts"]}", "-o", $"StrictHostKeyChecking={(strictHostKey ? "yes" : "accept-new")}",
            "-p", (port ?? Port).ToString(System.Globalization.CultureInfo.InvariantCulture),
        ];
        string destination = $"{user ?? User}@127.0.0.1";
        string[] arguments = input is null ? [.. options, destination, command!] : [.. options, "-tt", destination];
        return ChildProcess.Run("ssh", arguments, timeout: TimeSpan.FromSeconds(30), standardInput: input);
    }

    public void Dispose()
    {
        Stop();
        _dir.Dispose();
    }

    private static string PasswdWithHome(string line, string home)
    {
        string[] fields = line.Split(':');
        fields[5] = home;
        return string.Join(':', fields);
    }

    /// <summary>An sshd started otherwise than by <see cref="Boot"/> (a boot run inside a session), stopped with the pod.</summary>
    public void Track(int pid) => _sshds.Add(pid);

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>The SSH step against the real openssh-server and client (see <see cref="SshPod"/>).</summary>
public sealed class SshTests : IDisposable
{
    private readonly SshPod _pod = new();

    public void Dispose() => _pod.Dispose();

    [RootFact]
    public void A_key_from_PUBLIC_KEY_logs_in_to_the_persisted_home_with_the_workspace_on_PATH_and_the_pods_variables()
    {
        Require.Root();
        string other = _pod.NewKey("other");
        const string token = "hf_$(touch /tmp/packet-ssh-pwned)\"' `id` \\x";

        var boot = _pod.Boot(new Dictionary<string, string?> { ["PUBLIC_KEY"] = $"{other}\n{_pod.ClientKey}\n", ["HF_TOKEN"] = token });
        var command = _pod.Ssh("pwd; printf '%s\\n' \"$HF_TOKEN\"; mytool; imagetool");
        var login = _pod.Ssh(null, input: "mytool; imagetool; echo \"HOME=$HOME\"; exit\n");

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Contains($"ssh[7] sshd (pid {_pod.State()!.Value.GetProperty("pid").GetInt32()}) listening on port {_pod.Port} for root", boot.StandardError);
        Assert.Contains("2 keys from the pod", boot.StandardError);
        Assert.True(command.ExitCode == 0, command.ToString());
        Assert.Equal($"{_pod.PersistedHome}\n{token}\nmytool from the volume\nimagetool from the image\n", command.StandardOutput);
        Assert.False(File.Exists("/tmp/packet-ssh-pwned"));
        Assert.True(login.ExitCode == 0, login.ToString());
        Assert.Contains("mytool from the volume", login.StandardOutput);
        Assert.Contains("imagetool from the image", login.StandardOutput);
        Assert.Contains($"HOME={_pod.PersistedHome}", login.StandardOutput);
        int sshd = _pod.State()!.Value.GetProperty("pid").GetInt32();
        string config = File.ReadAllText($"/proc/{sshd}/root/run/packet-agent/sshd_config");
        Assert.Contains("\nStrictModes yes\n", config);
        Assert.DoesNotContain("PACKET_", config.Replace("PACKET_POD_PATH=", string.Empty, StringComparison.Ordinal));
    }

    [RootFact]
    public void The_keys_and_host_keys_are_private_and_the_keys_belong_to_the_homes_owner_who_alone_logs_in_with_them()
    {
        Require.Root();
        using var pod = new SshPod(user: "dev");

        var boot = pod.Boot(new Dictionary<string, string?> { ["SSH_PUBLIC_KEY"] = pod.ClientKey });
        var asOwner = pod.Ssh("id -u; pwd");
        var asRoot = pod.Ssh("true", user: "root");

        Assert.True(boot.ExitCode == 0, boot.ToString());
        string ssh = Path.Join(pod.PersistedHome, ".ssh");
        Assert.Equal(("700", SshPod.NonRootUid), Mode(ssh));
        Assert.Equal(("600", SshPod.NonRootUid), Mode(Path.Join(ssh, "authorized_keys")));
        string hostKeys = Path.Join(pod.Workspace, ".packet", "ssh");
        Assert.Equal(("700", 0), Mode(hostKeys));
        Assert.Equal(("600", 0), Mode(Path.Join(hostKeys, "ssh_host_ed25519_key")));
        Assert.False(File.Exists(Path.Join(hostKeys, "ssh_host_rsa_key")), "an RSA host key was made without --ssh-rsa-host-key");
        Assert.True(asOwner.ExitCode == 0, asOwner.ToString());
        Assert.Equal($"{SshPod.NonRootUid}\n{pod.PersistedHome}\n", asOwner.StandardOutput);
        Assert.Equal(255, asRoot.ExitCode);
        Assert.Contains("Permission denied", asRoot.StandardError);
    }

    [RootFact]
    public void After_a_restart_the_host_key_is_the_same_the_key_is_listed_once_and_a_key_gone_from_the_pod_no_longer_logs_in()
    {
        Require.Root();
        string second = _pod.NewKey("second");
        var keys = new Dictionary<string, string?> { ["PUBLIC_KEY"] = $"{_pod.ClientKey}\n{second}" };
        Assert.Equal(0, _pod.Boot(keys).ExitCode);
        Assert.Equal(0, _pod.Ssh("true").ExitCode);
        string fingerprint = _pod.State()!.Value.GetProperty("host_key_fingerprint").GetString()!;
        File.AppendAllText(Path.Join(_pod.PersistedHome, ".ssh", "authorized_keys"), "# added by hand\n");

        _pod.Stop();
        var again = _pod.Boot(keys);
        var strict = _pod.Ssh("true", strictHostKey: true);
        _pod.Stop();
        var fewer = _pod.Boot(new Dictionary<string, string?> { ["PUBLIC_KEY"] = second });
        var gone = _pod.Ssh("true");
        var kept = _pod.Ssh("true", key: "second", strictHostKey: true);

        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains($"host key {fingerprint}, kept in", again.StandardError);
        Assert.True(strict.ExitCode == 0, $"the host key changed across the restart: {strict}");
        Assert.Equal(fingerprint, _pod.State()!.Value.GetProperty("host_key_fingerprint").GetString());
        string[] lines = File.ReadAllLines(Path.Join(_pod.PersistedHome, ".ssh", "authorized_keys"));
        Assert.Equal(1, lines.Count(l => l == second));
        Assert.DoesNotContain(_pod.ClientKey, lines);
        Assert.Contains("# added by hand", lines);
        Assert.Equal(255, gone.ExitCode);
        Assert.Contains("Permission denied", gone.StandardError);
        Assert.True(kept.ExitCode == 0, kept.ToString());
    }

    [RootFact]
    public void Keys_come_from_a_mounted_Secret_as_the_kubelet_lays_it_out()
    {
        Require.Root();
        string secret = _pod["secret"];
        string version = Path.Join(secret, "..2026_11_29_10_00_00.123456789");
        Directory.CreateDirectory(version);
        File.WriteAllText(Path.Join(version, "me.pub"), _pod.ClientKey + "\n");
        File.CreateSymbolicLink(Path.Join(secret, "..data"), Path.GetFileName(version));
        File.CreateSymbolicLink(Path.Join(secret, "me.pub"), "..data/me.pub");

        var boot = _pod.Boot(new Dictionary<string, string?> { ["PACKET_SSH_KEYS_DIR"] = secret });
        var login = _pod.Ssh("true");

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Contains("1 key from the pod", boot.StandardError);
        Assert.Contains("warnings: 0", boot.StandardError);
        Assert.True(login.ExitCode == 0, login.ToString());
    }

    [RootFact]
    public void A_malformed_key_is_a_warning_naming_the_variable_and_the_line_and_is_never_written()
    {
        Require.Root();

        var boot = _pod.Boot(new Dictionary<string, string?> { ["PUBLIC_KEY"] = $"{_pod.ClientKey}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKSOgzpQ8tnz9z" });

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Contains("warn: ssh[7]", boot.StandardError);
        Assert.Contains("PUBLIC_KEY line 2: the key's data is not base64", boot.StandardError);
        Assert.Contains("warnings: 1", boot.StandardError);
        Assert.DoesNotContain("AAAAC3NzaC1lZDI1NTE5AAAAIKSOgzpQ8tnz9z\n", File.ReadAllText(Path.Join(_pod.PersistedHome, ".ssh", "authorized_keys")));
        Assert.Equal(0, _pod.Ssh("true").ExitCode);
    }

    [RootFact]
    public void An_image_without_sshd_skips_the_step_with_one_info_line_unless_ssh_is_on()
    {
        Require.Root();
        var keys = new Dictionary<string, string?> { ["PUBLIC_KEY"] = _pod.ClientKey };

        var auto = _pod.Boot(new Dictionary<string, string?>(keys) { ["PACKET_SSH"] = "auto" }, hideSshd: true);
        var on = _pod.Boot(new Dictionary<string, string?>(keys) { ["PACKET_SSH"] = "on" }, hideSshd: true);

        Assert.True(auto.ExitCode == 0, auto.ToString());
        Assert.Equal("info: ssh[7] skipped: the image has no sshd (install openssh-server to log in over SSH)", Assert.Single(auto.ErrorLines, l => l.Contains("ssh[7]", StringComparison.Ordinal))[25..]);
        Assert.Contains("warnings: 0", auto.StandardError);
        Assert.False(Directory.Exists(Path.Join(_pod.PersistedHome, ".ssh")));
        Assert.Null(_pod.State());
        Assert.Contains("warn: ssh[7] the image has no sshd (install openssh-server to log in over SSH); --ssh on", on.StandardError);
    }

    [RootFact]
    public void A_dry_run_says_what_the_step_would_do_and_does_none_of_it()
    {
        Require.Root();
        var keys = new Dictionary<string, string?> { ["PUBLIC_KEY"] = _pod.ClientKey, ["HF_TOKEN"] = "hf_x" };

        var dryRun = _pod.Boot(keys, ["--dry-run"]);

        Assert.True(dryRun.ExitCode == 0, dryRun.ToString());
        Assert.Contains($"ssh: would start /usr/sbin/sshd on port {_pod.Port} for root with 1 key from the pod in {_pod.PersistedHome}/.ssh/authorized_keys; "
            + $"would make the ed25519 host key, kept in {_pod.Workspace}/.packet/ssh; ", dryRun.StandardOutput);
        Assert.Contains("\n  - start /usr/sbin/sshd (-f ", dryRun.StandardOutput);
        Assert.Contains($"\n  - write {_pod.PersistedHome}/.ssh/authorized_keys, ", dryRun.StandardOutput);
        Assert.False(Directory.Exists(Path.Join(_pod.Workspace, ".packet")));
        Assert.False(Directory.Exists(Path.Join(_pod.PersistedHome, ".ssh")));
        Assert.Equal(255, _pod.Ssh("true").ExitCode);
    }

    [RootFact]
    public void A_default_boot_without_a_key_starts_no_sshd_and_nothing_listens_in_the_pods_network()
    {
        Require.Root();
        File.Delete(Path.Join(_pod.Home, ".profile")); // nothing in the home names a key either

        var withoutKey = _pod.Boot(new Dictionary<string, string?>(), ownNetwork: true, defaultPort: true);

        Assert.True(withoutKey.ExitCode == 0, withoutKey.ToString());
        Assert.Empty(SshPod.Listening(withoutKey));
        var line = Assert.Single(withoutKey.ErrorLines, l => l.Contains("ssh[7]", StringComparison.Ordinal));
        Assert.Contains("info: ssh[7] skipped: no key to let in: PUBLIC_KEY, SSH_PUBLIC_KEY and --ssh-keys-dir give none", line);
        Assert.Contains("--ssh on starts sshd without one", line);
        Assert.False(Directory.Exists(Path.Join(_pod.Workspace, ".packet", "ssh")), "host keys were made for an sshd that was not started");
        Assert.False(Directory.Exists(Path.Join(_pod.PersistedHome, ".ssh")));

        // The same pod given a key: sshd listens on port 22 (0x0016) on every address, so the check above can see one.
        var withKey = _pod.Boot(new Dictionary<string, string?> { ["PUBLIC_KEY"] = _pod.ClientKey }, ownNetwork: true, defaultPort: true);
        Assert.True(withKey.ExitCode == 0, withKey.ToString());
        Assert.Equal(["00000000000000000000000000000000:0016", "00000000:0016"], SshPod.Listening(withKey).Order(StringComparer.Ordinal));
    }

    [RootFact]
    public void A_listen_address_is_the_only_one_sshd_listens_on()
    {
        Require.Root();

        var boot = _pod.Boot(new Dictionary<string, string?> { ["PUBLIC_KEY"] = _pod.ClientKey, ["PACKET_SSH_LISTEN"] = "127.0.0.1" }, ownNetwork: true, defaultPort: true);

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Equal(["0100007F:0016"], SshPod.Listening(boot));
        Assert.Contains("listening on 127.0.0.1 port 22 for root", boot.StandardError);
    }

    [RootFact]
    public void A_boot_run_again_from_inside_an_ssh_session_leaves_sshd_and_the_session_alone()
    {
        Require.Root();
        Assert.Equal(0, _pod.Boot(new Dictionary<string, string?> { ["PUBLIC_KEY"] = _pod.ClientKey, ["HF_TOKEN"] = "hf_pod" }).ExitCode);
        int sshd = _pod.State()!.Value.GetProperty("pid").GetInt32();
        string port = _pod.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string rerun = string.Join(' ', new[] { RepositoryPaths.AgentBinary, "boot", "--workspace", _pod.Workspace, "--home", _pod.Home, "--gpu", "off", "--ssh-port", port }.Select(ChildProcess.Quote));

        // An interactive login (its profile rewrites PATH, its .bashrc adds variables), then the boot, then the same shell again.
        var session = _pod.Ssh(null, input: $"echo before $$; {rerun} 2>&1 | grep 'ssh\\[7\\]'; echo after $$; printenv HF_TOKEN; exit\n");

        Assert.True(session.ExitCode == 0, session.ToString());
        var lines = session.StandardOutput.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        string shell = ShellOf(session);
        Assert.Contains($"after {shell}", lines);
        Assert.Contains("hf_pod", lines);
        Assert.Contains(lines, l => l.Contains($"sshd (pid {sshd}) already listening on port {port} for root with this configuration, left alone", StringComparison.Ordinal));
        Assert.True(Syscall.kill(sshd, 0) == 0, "the running sshd was stopped");
        Assert.Equal(sshd, _pod.State()!.Value.GetProperty("pid").GetInt32());
        Assert.Equal(0, _pod.Ssh("true", strictHostKey: true).ExitCode);
    }

    [RootFact]
    public void A_boot_run_again_with_another_configuration_replaces_sshd_and_the_session_it_runs_in_goes_on()
    {
        Require.Root();
        Assert.Equal(0, _pod.Boot(new Dictionary<string, string?> { ["PUBLIC_KEY"] = _pod.ClientKey }).ExitCode);
        int first = _pod.State()!.Value.GetProperty("pid").GetInt32();
        int newPort = SshPod.FreePort();
        string rerun = string.Join(' ', new[] { RepositoryPaths.AgentBinary, "boot", "--workspace", _pod.Workspace, "--home", _pod.Home, "--gpu", "off", "--ssh-port", newPort.ToString(System.Globalization.CultureInfo.InvariantCulture) }.Select(ChildProcess.Quote));

        var session = _pod.Ssh(null, input: $"echo before $$; {rerun} 2>&1 | grep 'ssh\\[7\\]'; sleep 0.5; echo after $$; exit\n");

        Assert.True(session.ExitCode == 0, session.ToString());
        var lines = session.StandardOutput.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        string shell = ShellOf(session);
        Assert.Contains($"after {shell}", lines);
        int second = _pod.State()!.Value.GetProperty("pid").GetInt32();
        Assert.NotEqual(first, second);
        Assert.Contains(lines, l => l.Contains($"sshd (pid {second}) listening on port {newPort} for root, in place of the sshd (pid {first}) an earlier boot started with another configuration (its sessions go on)", StringComparison.Ordinal));
        _pod.Track(second);
        Assert.NotEqual(0, Syscall.kill(first, 0));
        Assert.Equal(0, _pod.Ssh("true", port: newPort).ExitCode);
    }

    [RootFact]
    public void On_a_volume_that_keeps_no_modes_the_boot_says_sshd_will_refuse_the_keys_and_sshd_does()
    {
        Require.Root();
        using var exfat = new TestVolume(VolumeKind.Exfat);
        using var pod = new SshPod(workspace: exfat.Path);

        var boot = pod.Boot(new Dictionary<string, string?> { ["PUBLIC_KEY"] = pod.ClientKey });
        var login = pod.Ssh("true");

        Assert.True(boot.ExitCode == 0, boot.ToString());
        string keys = Path.Join(pod.PersistedHome, ".ssh", "authorized_keys");
        var line = Assert.Single(boot.ErrorLines, l => l.Contains("ssh[7]", StringComparison.Ordinal));
        Assert.True(line.Contains("warn: ssh[7] sshd (pid ", StringComparison.Ordinal), boot.ToString());
        Assert.Contains($"; sshd will refuse every key in {keys} (StrictModes, kept on): {keys} is mode 0777, writable by everyone, although the agent set it to 0600 for its owner just now: "
            + "the volume does not keep modes or owners (FAT and exFAT do not); keep the home on a volume that does (ext4, xfs, btrfs, NFS) to log in over SSH", line);
        Assert.Equal(255, login.ExitCode);
        Assert.Contains("Permission denied", login.StandardError);
        int sshd = pod.State()!.Value.GetProperty("pid").GetInt32();
        string log = File.ReadAllText($"/proc/{sshd}/root/run/packet-agent/sshd.log");
        Assert.Contains($"Authentication refused: bad ownership or modes for file {keys}", log);
        pod.Stop();
    }

    [RootFact]
    public void A_pod_with_more_variables_than_sshd_takes_still_logs_in_and_the_boot_names_what_sessions_do_not_get()
    {
        Require.Root();
        // About 150 Services in the namespace: the kubelet gives every container 7 variables for each.
        var environment = new Dictionary<string, string?> { ["PUBLIC_KEY"] = _pod.ClientKey, ["KUBERNETES_SERVICE_HOST"] = "10.0.0.1", ["KUBERNETES_SERVICE_PORT"] = "443" };
        for (int i = 0; i < 150; i++)
        {
            string name = $"SVC{i:D3}";
            environment[$"{name}_SERVICE_HOST"] = "10.0.1.1";
            environment[$"{name}_SERVICE_PORT"] = "80";
            environment[$"{name}_SERVICE_PORT_HTTP"] = "80";
            environment[$"{name}_PORT"] = "tcp://10.0.1.1:80";
            environment[$"{name}_PORT_80_TCP"] = "tcp://10.0.1.1:80";
            environment[$"{name}_PORT_80_TCP_PROTO"] = "tcp";
            environment[$"{name}_PORT_80_TCP_ADDR"] = "10.0.1.1";
        }

        var boot = _pod.Boot(environment);
        var login = _pod.Ssh("echo \"api $KUBERNETES_SERVICE_HOST\"; printenv | grep -c _SERVICE_HOST");

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Contains("left out: 1050 Kubernetes service-link variables (such as SVC000_PORT, SVC000_PORT_80_TCP, SVC000_PORT_80_TCP_ADDR; the Services' DNS names reach the same)", boot.StandardError);
        Assert.True(login.ExitCode == 0, $"the session died: {login}");
        Assert.Equal("api 10.0.0.1\n1\n", login.StandardOutput);
    }

    [RootFact]
    public void Every_byte_outside_the_pods_block_of_authorized_keys_is_kept_as_it_was()
    {
        Require.Root();
        Directory.CreateDirectory(Path.Join(_pod.PersistedHome, ".ssh"));
        byte[] byHand = [.. "# caf"u8, 0xE9, .. " (Latin-1), not UTF-8\n"u8, .. System.Text.Encoding.UTF8.GetBytes(_pod.ClientKey + "\n")];
        string keys = Path.Join(_pod.PersistedHome, ".ssh", "authorized_keys");
        File.WriteAllBytes(keys, byHand);

        var boot = _pod.Boot(new Dictionary<string, string?> { ["PUBLIC_KEY"] = _pod.NewKey("other") });

        Assert.True(boot.ExitCode == 0, boot.ToString());
        byte[] after = File.ReadAllBytes(keys);
        Assert.Equal(byHand, after[..byHand.Length]);
        Assert.Contains("# >>> packet-agent keys >>>", System.Text.Encoding.Latin1.GetString(after[byHand.Length..]));
        Assert.Equal(0, _pod.Ssh("true").ExitCode);
    }

    [RootFact]
    public void Status_shows_the_port_the_host_key_the_keys_and_whether_sshd_runs()
    {
        Require.Root();
        Assert.Equal(0, _pod.Boot(new Dictionary<string, string?> { ["PUBLIC_KEY"] = _pod.ClientKey }).ExitCode);
        string fingerprint = _pod.State()!.Value.GetProperty("host_key_fingerprint").GetString()!;
        int pid = _pod.State()!.Value.GetProperty("pid").GetInt32();

        var running = Agent.Run(["status", "--workspace", _pod.Workspace, "--home", _pod.Home]);
        _pod.Stop();
        var stopped = Agent.Run(["status", "--workspace", _pod.Workspace, "--home", _pod.Home]);

        Assert.Contains($"port {_pod.Port}, host key {fingerprint} (kept on the volume), 1 key from the pod, sshd running (pid {pid})", running.StandardOutput);
        Assert.Contains("sshd not running", stopped.StandardOutput);
        Assert.Contains($"sshd (pid {pid}) is not running: SSH logins fail until the next boot starts it", stopped.StandardOutput);
    }

    /// <summary>The pid the session's shell printed after "before " (a terminal's escape sequences may precede it).</summary>
    private static string ShellOf(ChildResult session) =>
        Regex.Match(session.StandardOutput, @"before (\d+)") is { Success: true } match ? match.Groups[1].Value : throw new Xunit.Sdk.XunitException($"the session did not start its shell: {session}");

    private static (string Mode, int Owner) Mode(string path)
    {
        Assert.Equal(0, Syscall.lstat(path, out var stat));
        return (Convert.ToString((int)stat.st_mode & 0b111_111_111, 8), (int)stat.st_uid);
    }
}

/// <summary>A boot without a volume: the pod's keys go to the live home, host keys are temporary and the boot says so.</summary>
public sealed class SshWithoutVolumeTests : IDisposable
{
    private readonly SshPod _pod = new(loginToLiveHome: true);

    public void Dispose() => _pod.Dispose();

    [RootFact]
    public void Temporary_host_keys_are_made_and_the_boot_says_so()
    {
        Require.Root();

        var boot = _pod.Boot(new Dictionary<string, string?> { ["PUBLIC_KEY"] = _pod.ClientKey }, workspace: _pod["no-volume"]);
        var login = _pod.Ssh("pwd");

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Contains("temporary (no volume: clients see a new host key after a restart)", boot.StandardError);
        Assert.Contains(_pod.ClientKey, File.ReadAllText(Path.Join(_pod.Home, ".ssh", "authorized_keys")));
        Assert.True(login.ExitCode == 0, login.ToString());
        Assert.Equal(_pod.Home + "\n", login.StandardOutput);
    }
}

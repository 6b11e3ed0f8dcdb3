using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Exec;
using Packet.Agent.Steps;
using Packet.Agent.Ssh;
using Xunit;

namespace Packet.Agent.Tests;

public sealed class PublicKeysTests
{
    public const string Alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKSOgzpQ8tnz9zRaK64J/AUNXNzxX+Z9mvoJfWWzm6Bh alice@laptop";
    public const string Bob = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC3G379HZFPn7xp1l+gARvHxJYvPwYbMaz38KJcecZrB bob@desk";
    public const string Carol = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHPj4m5geKUB9UsGWD/sEa0q8tfy+4uRCxE0TWRULdIk7N7rzmVOBpVvtfpT4b4eAciVqOudd+qDbtDcYEyuAtU= carol";

    private static PodKeys Gather(Dictionary<string, string> variables, params (string, string)[] files) =>
        PublicKeys.Gather(name => variables.GetValueOrDefault(name), files);

    [Fact]
    public void Each_variable_may_hold_several_keys_and_files_add_theirs_in_name_order_each_key_once()
    {
        var pod = Gather(
            new() { ["PUBLIC_KEY"] = $"{Alice}\r\n\n{Bob}\n", ["SSH_PUBLIC_KEY"] = Alice.Replace("alice@laptop", "alice again", StringComparison.Ordinal) },
            ("/keys/z", Carol),
            ("/keys/a", $"# a comment\n{Bob}"));

        Assert.Empty(pod.Problems);
        Assert.Equal([Alice, Bob, Carol], pod.Keys.Select(k => k.Line));
    }

    [Theory]
    [InlineData("not a key", "PUBLIC_KEY line 2: not a public key")]
    [InlineData("ssh-foo AAAA", "PUBLIC_KEY line 2: unknown key type 'ssh-foo'")]
    [InlineData("command=\"/bin/sh\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKSOgzpQ8tnz9zRaK64J/AUNXNzxX+Z9mvoJfWWzm6Bh", "PUBLIC_KEY line 2: options before the key are not taken from the pod")]
    [InlineData("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKSOgzpQ8tnz9z!!", "PUBLIC_KEY line 2: the key's data is not base64")]
    [InlineData("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIKSOgzpQ8tnz9zRaK64J/AUNXNzxX+Z9mvoJfWWzm6Bh", "PUBLIC_KEY line 2: the key's data is not a ssh-rsa key")]
    [InlineData("ssh-ed25519 AAAA", "PUBLIC_KEY line 2: the key's data is not a ssh-ed25519 key")]
    public void A_malformed_line_is_named_by_variable_and_line_and_never_taken(string bad, string problem)
    {
        var pod = Gather(new() { ["PUBLIC_KEY"] = $"{Alice}\n{bad}\n{Bob}" });

        Assert.Equal([Alice, Bob], pod.Keys.Select(k => k.Line));
        Assert.StartsWith(problem, Assert.Single(pod.Problems));
        Assert.EndsWith("; left out", pod.Problems[0]);
    }

    [Fact]
    public void A_key_without_a_comment_is_written_without_one_and_a_comment_keeps_its_inner_spaces()
    {
        string bare = Alice[..Alice.LastIndexOf(' ')];

        Assert.True(PublicKeys.Parse(bare, out var plain, out _));
        Assert.True(PublicKeys.Parse(bare + "\t  alice at  the laptop  ", out var commented, out _));

        Assert.Equal((bare, string.Empty), (plain.Line, plain.Comment));
        Assert.Equal(bare + " alice at  the laptop", commented.Line);
    }

    [Fact]
    public void Files_are_read_in_name_order_whatever_order_they_are_given_in()
    {
        var pod = Gather([], ("/keys/b", Bob), ("/keys/a", Alice), ("/keys/c", Carol));

        Assert.Equal([Alice, Bob, Carol], pod.Keys.Select(k => k.Line));
    }

    [Theory]
    [InlineData("from=10.0.0.1 ssh-ed25519 AAAA")]
    [InlineData("ssh-\"x ssh-ed25519 AAAA")]
    public void Options_written_with_either_an_equals_sign_or_a_quote_are_refused_as_options(string line)
    {
        Assert.False(PublicKeys.Parse(line, out _, out string? why));

        Assert.StartsWith("options before the key are not taken from the pod", why);
    }

    [Fact]
    public void An_unknown_type_is_named_with_its_control_characters_shown_and_cut_to_40()
    {
        Assert.False(PublicKeys.Parse("ssh-\u0007bell" + new string('x', 60) + " AAAA", out _, out string? why));

        Assert.Equal($"unknown key type 'ssh-?bell{new string('x', 31)}'", why);
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0 })]
    [InlineData(new byte[] { 0, 0, 0, 12, (byte)'s', (byte)'s', (byte)'h', (byte)'-', (byte)'e', (byte)'d' })]
    [InlineData(new byte[] { 0, 0, 0, 7, (byte)'s', (byte)'s', (byte)'h', (byte)'-', (byte)'r', (byte)'s' })]
    public void A_blob_too_short_for_its_own_type_name_is_not_a_key(byte[] blob)
    {
        Assert.False(PublicKeys.Parse($"ssh-ed25519 {Convert.ToBase64String(blob)}", out _, out string? why));

        Assert.Equal("the key's data is not a ssh-ed25519 key", why);
    }

    [Fact]
    public void A_blob_holding_exactly_its_type_name_is_a_key_of_that_type()
    {
        byte[] blob = [0, 0, 0, 11, .. "ssh-ed25519"u8];

        Assert.True(PublicKeys.Parse($"ssh-ed25519 {Convert.ToBase64String(blob)}", out var key, out _));
        Assert.Equal("ssh-ed25519", key.Type);
    }

    [Fact]
    public void No_variables_and_no_files_give_no_keys_and_no_problems()
    {
        var pod = Gather(new() { ["PUBLIC_KEY"] = "  \n" });

        Assert.Empty(pod.Keys);
        Assert.Empty(pod.Problems);
    }
}

public sealed class AuthorizedKeysBlockTests
{
    private static readonly PublicKey Alice = Key(PublicKeysTests.Alice);
    private static readonly PublicKey Bob = Key(PublicKeysTests.Bob);

    private static PublicKey Key(string line)
    {
        Assert.True(PublicKeys.Parse(line, out var key, out _));
        return key;
    }

    [Fact]
    public void The_pods_keys_are_added_once_however_many_boots_and_the_users_own_lines_stay()
    {
        string byHand = "# mine\n" + PublicKeysTests.Carol + "\n";

        string first = AuthorizedKeysBlock.Apply(byHand, [Alice, Bob], out int listed);
        string second = AuthorizedKeysBlock.Apply(first, [Alice, Bob], out _);

        Assert.Equal(2, listed);
        Assert.Same(first, second);
        Assert.StartsWith(byHand, first, StringComparison.Ordinal);
        Assert.Single(first.Split('\n'), l => l == PublicKeysTests.Alice);
        Assert.Single(first.Split('\n'), l => l == AuthorizedKeysBlock.Start);
        Assert.EndsWith(AuthorizedKeysBlock.End + "\n", first, StringComparison.Ordinal);
    }

    [Fact]
    public void The_block_says_where_its_keys_come_from_and_where_the_users_own_go()
    {
        string block = AuthorizedKeysBlock.Apply(string.Empty, [Alice], out _);

        Assert.Equal(
            $"{AuthorizedKeysBlock.Start}\n# From the pod (PUBLIC_KEY, SSH_PUBLIC_KEY, --ssh-keys-dir), rewritten at every boot; add your own keys outside this block.\n{PublicKeysTests.Alice}\n{AuthorizedKeysBlock.End}\n",
            block);
    }

    [Fact]
    public void A_key_removed_from_the_pod_leaves_at_the_next_boot_and_no_keys_leave_no_block()
    {
        string both = AuthorizedKeysBlock.Apply(string.Empty, [Alice, Bob], out _);

        string one = AuthorizedKeysBlock.Apply(both, [Bob], out int listed);
        string none = AuthorizedKeysBlock.Apply(one, [], out _);

        Assert.Equal(1, listed);
        Assert.DoesNotContain(PublicKeysTests.Alice, one, StringComparison.Ordinal);
        Assert.Contains(PublicKeysTests.Bob, one, StringComparison.Ordinal);
        Assert.Equal(string.Empty, none);
    }

    [Fact]
    public void A_key_the_user_already_listed_is_not_listed_again()
    {
        string byHand = PublicKeysTests.Alice.Replace("alice@laptop", "my comment", StringComparison.Ordinal) + "\n";

        string updated = AuthorizedKeysBlock.Apply(byHand, [Alice, Bob], out int listed);

        Assert.Equal(1, listed);
        Assert.Single(updated.Split('\n'), l => l.StartsWith(Alice.Identity, StringComparison.Ordinal));
    }

    [Fact]
    public void Keys_added_by_hand_are_counted_with_their_options_and_the_blocks_keys_apart()
    {
        string text = string.Join('\n',
            "# a comment naming ssh-ed25519 AAAA",
            $"from=\"10.0.0.0/8\",command=\"echo hi there\" {PublicKeysTests.Alice}",
            "ssh-ed25519 AAAAnot-base64!",
            string.Empty,
            AuthorizedKeysBlock.Start,
            PublicKeysTests.Bob,
            PublicKeysTests.Carol,
            AuthorizedKeysBlock.End,
            $"\t{PublicKeysTests.Carol}",
            string.Empty);

        Assert.Equal(2, AuthorizedKeysBlock.KeysOutside(text));
        Assert.Equal(2, AuthorizedKeysBlock.KeysInBlock(text));
        Assert.Equal(0, AuthorizedKeysBlock.KeysOutside(string.Empty));
        Assert.Equal(0, AuthorizedKeysBlock.KeysInBlock("# only a comment\n"));
    }

    [Fact]
    public void Lines_after_a_block_whose_end_was_cut_are_kept_as_the_users()
    {
        string cut = $"{AuthorizedKeysBlock.Start}\n{PublicKeysTests.Carol}\n";

        string updated = AuthorizedKeysBlock.Apply(cut, [Alice], out _);

        Assert.Contains(PublicKeysTests.Carol, updated, StringComparison.Ordinal);
        Assert.Contains(PublicKeysTests.Alice, updated, StringComparison.Ordinal);
        Assert.Single(updated.Split('\n'), l => l == AuthorizedKeysBlock.Start);
    }
}

public sealed class SshdConfigTests
{
    private static SshdSettings Settings(bool rootHome = true, Dictionary<string, string>? environment = null, string? listen = null) =>
        new(2222, listen, ["/ws/.packet/ssh/ssh_host_ed25519_key"], rootHome ? "root" : "dev", "/ws/home/.ssh/authorized_keys", "/run/packet-agent/sshd.pid", environment ?? []);

    [Fact]
    public void Keys_only_and_root_only_with_a_key_when_the_home_is_roots()
    {
        string root = SshdConfig.Render(Settings());
        string user = SshdConfig.Render(Settings(rootHome: false));

        Assert.Contains("\nPort 2222\n", root, StringComparison.Ordinal);
        Assert.Contains("\nPasswordAuthentication no\n", root, StringComparison.Ordinal);
        Assert.Contains("\nKbdInteractiveAuthentication no\n", root, StringComparison.Ordinal);
        Assert.Contains("\nPermitRootLogin prohibit-password\n", root, StringComparison.Ordinal);
        Assert.Contains("\nPermitRootLogin no\n", user, StringComparison.Ordinal);
        Assert.Contains("\nAuthorizedKeysFile .ssh/authorized_keys\n", root, StringComparison.Ordinal);
        Assert.Contains("\nStrictModes yes\n", root, StringComparison.Ordinal);
        Assert.DoesNotContain("ListenAddress", root, StringComparison.Ordinal);
        Assert.EndsWith("\nMatch User \"dev\"\n\tAuthorizedKeysFile .ssh/authorized_keys \"/ws/home/.ssh/authorized_keys\"\n", user, StringComparison.Ordinal);
        Assert.DoesNotContain("SetEnv", root, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public void A_listen_address_is_the_one_address_after_the_port(string address)
    {
        string config = SshdConfig.Render(Settings(listen: address));

        Assert.Contains($"\nPort 2222\nListenAddress {address}\nHostKey ", config, StringComparison.Ordinal);
    }

    [Fact]
    public void The_whole_config_is_exactly_the_approved_one()
    {
        var settings = new SshdSettings(2222, null, ["/ws/.packet/ssh/ssh_host_ed25519_key", "/ws/.packet/ssh/ssh_host_rsa_key"], "dev", "/ws/home/.ssh/authorized_keys", "/run/packet-agent/sshd.pid", new Dictionary<string, string> { ["A"] = "1" });

        Assert.Equal(
            """
            # Written by packet-agent at every boot; changes here are lost. See docs/ssh.md.
            Port 2222
            HostKey "/ws/.packet/ssh/ssh_host_ed25519_key"
            HostKey "/ws/.packet/ssh/ssh_host_rsa_key"
            AuthorizedKeysFile .ssh/authorized_keys
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin no
            UsePAM no
            StrictModes yes
            PrintMotd no
            X11Forwarding no
            Subsystem sftp internal-sftp
            PidFile "/run/packet-agent/sshd.pid"
            SetEnv "A=1"
            Match User "dev"
            	AuthorizedKeysFile .ssh/authorized_keys "/ws/home/.ssh/authorized_keys"

            """.ReplaceLineEndings("\n"),
            SshdConfig.Render(settings));
    }

    [Fact]
    public void The_pods_environment_is_recorded_as_the_kernel_lists_a_process_environment()
    {
        var environment = new System.Collections.Hashtable { ["A"] = "1", ["EQUALS"] = "a=b", ["EMPTY"] = string.Empty };

        string record = System.Text.Encoding.UTF8.GetString(PodEnvironment.Serialize(environment));

        Assert.Equal(["A=1", "EMPTY=", "EQUALS=a=b"], record.Split('\0', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.EndsWith("\0", record, StringComparison.Ordinal);
    }

    [Fact]
    public void Outside_an_ssh_session_the_agent_runs_with_its_own_environment_without_looking_for_a_record()
    {
        var process = new System.Collections.Hashtable { ["PATH"] = "/usr/bin", ["SSH_CONNECTION"] = string.Empty };

        var resolved = PodEnvironment.Resolve(new System.IO.Abstractions.TestingHelpers.MockFileSystem(), "/nonexistent/packet-agent", () => throw new InvalidOperationException("the runtime directory was looked at"), process);

        Assert.Same(process, resolved.Variables);
        Assert.Null(resolved.RecordedBy);
        Assert.Null(resolved.NotUsed);
    }

    [Theory]
    [InlineData("\nstarts with a newline")]
    [InlineData("ends with a return\r")]
    [InlineData("a\0nul")]
    public void A_value_with_a_line_break_or_a_nul_anywhere_is_left_out(string value)
    {
        var leftOut = new List<string>();

        var kept = SshdConfig.SessionEnvironment(new Dictionary<string, string> { ["V"] = value }, leftOut);

        Assert.Empty(kept);
        Assert.Equal(["V"], leftOut);
    }

    [Theory]
    [InlineData("_PRIVATE", true)]
    [InlineData("x", true)]
    [InlineData("A1_b", true)]
    [InlineData("1ABC", false)]
    [InlineData("A.B", false)]
    [InlineData("É", false)]
    public void Only_shell_identifiers_are_passed_to_sessions(string name, bool kept)
    {
        var leftOut = new List<string>();

        var sessions = SshdConfig.SessionEnvironment(new Dictionary<string, string> { [name] = "v" }, leftOut);

        Assert.Equal(kept, sessions.ContainsKey(name));
        Assert.Equal(!kept, leftOut.Contains(name));
    }

    [Fact]
    public void Every_variable_goes_on_one_SetEnv_line_quoted_so_no_value_can_end_it()
    {
        string config = SshdConfig.Render(Settings(environment: new() { ["A"] = "plain", ["B"] = "x\" PermitRootLogin yes \\\"#", ["C"] = "it's $(id)" }));

        string setEnv = Assert.Single(config.Split('\n'), l => l.StartsWith("SetEnv", StringComparison.Ordinal));
        Assert.Equal("SetEnv \"A=plain\" \"B=x\\\" PermitRootLogin yes \\\\\\\"#\" \"C=it's $(id)\"", setEnv);
        Assert.Single(config.Split('\n'), l => l.StartsWith("PermitRootLogin", StringComparison.Ordinal));
    }

    [Fact]
    public void Sessions_get_the_pods_variables_without_those_sessions_own_or_sshd_config_cannot_hold()
    {
        var leftOut = new List<string>();

        var kept = SshdConfig.SessionEnvironment(
            new Dictionary<string, string>
            {
                ["PATH"] = "/workspace/bin:/usr/bin",
                ["HF_TOKEN"] = "hf_x",
                ["HOME"] = "/root",
                ["TERM"] = "xterm",
                ["SSH_AUTH_SOCK"] = "/tmp/a",
                ["PUBLIC_KEY"] = "ssh-ed25519 AAAA",
                ["PEM"] = "line1\nline2",
                ["bad-name"] = "x",
            },
            leftOut);

        Assert.Equal(["HF_TOKEN", "PACKET_POD_PATH", "PATH"], kept.Keys);
        Assert.Equal("/workspace/bin:/usr/bin", kept["PACKET_POD_PATH"]);
        Assert.Equal(["PEM", "bad-name"], leftOut.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("PACKET_SSH")]
    [InlineData("PACKET_WORKSPACE")]
    [InlineData("PACKET_POD_PATH")]
    [InlineData("TINI_SUBREAPER")]
    [InlineData("LISTEN_FDS")]
    [InlineData("LISTEN_PID")]
    [InlineData("NOTIFY_SOCKET")]
    [InlineData("INVOCATION_ID")]
    [InlineData("JOURNAL_STREAM")]
    public void What_describes_the_agents_own_process_does_not_reach_sessions(string name)
    {
        var leftOut = new List<string>();

        var kept = SshdConfig.SessionEnvironment(new Dictionary<string, string> { [name] = "/somewhere", ["CUDA_VISIBLE_DEVICES"] = "0", ["PACKETS"] = "kept" }, leftOut);

        Assert.Equal(["CUDA_VISIBLE_DEVICES", "PACKETS"], kept.Keys);
        Assert.Empty(leftOut);
    }
}

public sealed class StrictModesTests
{
    private const uint Dev = 1000;
    private readonly Dictionary<string, EntryOwnership> _entries = new(StringComparer.Ordinal)
    {
        ["/"] = new(0, 0, 0x41ed),
        ["/tmp"] = new(0, 0, 0x43ff), // 1777: world-writable, as every /tmp
        ["/workspace"] = new(0, 0, 0x41ed),
        ["/workspace/home"] = new(Dev, Dev, 0x41ed),
        ["/workspace/home/.ssh"] = new(Dev, Dev, 0x41c0),
        ["/workspace/home/.ssh/authorized_keys"] = new(Dev, Dev, 0x8180),
    };

    private readonly Dictionary<string, string> _links = new(StringComparer.Ordinal) { ["/home/dev"] = "/workspace/home" };
    private readonly HashSet<uint> _privateGroups = [];

    private StrictModesRefusal? Refusal(string home = "/home/dev", uint uid = Dev) =>
        new StrictModes(
            path => _entries.TryGetValue(path, out var entry) ? entry : null,
            path => _links.TryGetValue(path, out string? target) ? target : _entries.ContainsKey(path) ? path : null,
            new Groups(_privateGroups)).Refusal("/workspace/home/.ssh/authorized_keys", uid, home);

    [Fact]
    public void Modes_the_agent_sets_pass_and_the_walk_stops_at_the_accounts_real_home()
    {
        _entries["/workspace"] = new(0, 0, 0x43ff); // above the home: never looked at

        Assert.Null(Refusal());
    }

    [Fact]
    public void Without_the_home_above_the_file_the_walk_goes_up_to_the_root()
    {
        _entries["/workspace"] = new(0, 0, 0x41ff);

        var refusal = Refusal(home: "/root", uid: Dev);

        Assert.Equal(new StrictModesRefusal("/workspace", "is mode 0777, writable by everyone", GroupWritable: false), refusal);
        Assert.Equal("/workspace is mode 0777, writable by everyone", refusal!.ToString());
    }

    [Fact]
    public void A_file_that_kept_no_mode_is_refused_first()
    {
        _entries["/workspace/home/.ssh/authorized_keys"] = new(0, 0, 0x81ff); // exfat: 0777, root's

        Assert.Equal("/workspace/home/.ssh/authorized_keys is mode 0777, writable by everyone", Refusal()?.ToString());
    }

    [Fact]
    public void An_entry_of_another_account_is_refused_and_roots_are_taken()
    {
        _entries["/workspace/home/.ssh"] = new(1001, Dev, 0x41c0);

        Assert.Equal("/workspace/home/.ssh belongs to uid 1001, neither root nor the account logging in (uid 1000)", Refusal()?.ToString());

        _entries["/workspace/home/.ssh"] = new(0, 0, 0x41c0);
        Assert.Null(Refusal());
    }

    [Fact]
    public void A_group_writable_folder_passes_only_when_its_group_holds_the_account_alone()
    {
        _entries["/workspace/home"] = new(Dev, 2000, 0x45f8); // 2770, a pod's fsGroup

        var refusal = Refusal();
        _privateGroups.Add(2000);

        Assert.Equal(new StrictModesRefusal("/workspace/home", "is mode 2770, writable by its group (gid 2000), which holds other accounts than uid 1000", GroupWritable: true), refusal);
        Assert.Null(Refusal());
    }

    [Fact]
    public void No_keys_file_is_nothing_to_refuse_and_a_folder_that_cannot_be_looked_at_is_named()
    {
        _entries.Remove("/workspace/home/.ssh/authorized_keys");
        Assert.Null(Refusal());

        _entries["/workspace/home/.ssh/authorized_keys"] = new(Dev, Dev, 0x8180);
        _entries.Remove("/workspace/home/.ssh");
        _links["/workspace/home/.ssh/authorized_keys"] = "/workspace/home/.ssh/authorized_keys";
        Assert.Equal("/workspace/home/.ssh cannot be looked at", Refusal()?.ToString());
    }

    private sealed class Groups(HashSet<uint> privateGroups) : IGroupMembership
    {
        public bool HoldsOnly(uint gid, uint uid, uint owner) => privateGroups.Contains(gid) && uid == Dev;
    }
}

public sealed class SshStepDecisionTests
{
    private const string Sshd = "/usr/sbin/sshd";
    private const string Keygen = "/usr/bin/ssh-keygen";
    private const string Key = "PUBLIC_KEY";

    // The runtime directory is looked at for an sshd an earlier boot started: here, one that does not exist.
    private readonly string _runtime = Path.Join(Path.GetTempPath(), $"packet-unit-{Guid.NewGuid():N}", "run");

    private StepResult Decide(SshMode mode, uint user = 0, string[]? executables = null, System.Collections.Hashtable? environment = null, bool insideContainer = true, PathTablePosix? posix = null, bool rsa = false, string? listen = null, uint? account = null)
    {
        executables ??= [Sshd, Keygen];
        var resolver = FakeFileSystem.Resolver(FakeFileSystem.With(executables), executables);
        var runner = new FakeProcessRunner(new ProcessResult(0, string.Empty, string.Empty, TimedOut: false));
        var accounts = new Accounts();
        var strictModes = new StrictModes(_ => null, _ => null, accounts);
        var step = new SshStep(
            posix ?? new PathTablePosix(user).Directory("/root"), new System.IO.Abstractions.TestingHelpers.MockFileSystem(), runner, resolver, TestAccounts.NoProgramChecks, () => environment ?? new System.Collections.Hashtable { ["PATH"] = "/usr/bin", [Key] = PublicKeysTests.Alice },
            new SshPaths(_runtime, "/run/sshd"), () => insideContainer, accounts, strictModes, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, TimeProvider.System);
        var options = new BootOptions { Workspace = "/workspace", Home = "/root", Ssh = mode, SshPort = 2222, SshRsaHostKey = rsa, SshListen = listen };
        using var plan = step.Decide(null, new BootSettings(options, new StopRequest(), AccountChoice.Of(new HomeAccount(account ?? user, account ?? user, "the test's"))));
        Assert.Empty(runner.Calls);
        return plan.Preview;
    }

    [Fact]
    public void Off_is_skipped_and_decides_nothing_else() =>
        Assert.Equal(StepResult.Skipped("--ssh off"), Decide(SshMode.Off));

    [Theory]
    [InlineData(SshMode.Auto, StepOutcome.Skipped)]
    [InlineData(SshMode.On, StepOutcome.Warning)]
    public void An_image_without_sshd_is_skipped_unless_ssh_is_on(SshMode mode, StepOutcome outcome)
    {
        var result = Decide(mode, executables: [Keygen]);

        Assert.Equal(outcome, result.Outcome);
        Assert.StartsWith("the image has no sshd (install openssh-server to log in over SSH)", result.Summary, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(SshMode.Auto, StepOutcome.Skipped)]
    [InlineData(SshMode.On, StepOutcome.Warning)]
    public void An_agent_that_is_not_root_starts_no_sshd(SshMode mode, StepOutcome outcome)
    {
        var result = Decide(mode, user: 1000);

        Assert.Equal(outcome, result.Outcome);
        Assert.StartsWith("sshd needs root to log users in, and the agent runs as uid 1000", result.Summary, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(SshMode.Auto, StepOutcome.Skipped)]
    [InlineData(SshMode.On, StepOutcome.Ok)]
    public void Outside_a_container_only_ssh_on_starts_sshd(SshMode mode, StepOutcome outcome)
    {
        var result = Decide(mode, insideContainer: false);

        Assert.Equal(outcome, result.Outcome);
        Assert.Equal(mode == SshMode.Auto, result.Summary.StartsWith("not inside a container: --ssh auto starts sshd only in one", StringComparison.Ordinal));
    }

    [Fact]
    public void Auto_without_a_key_anywhere_starts_nothing_and_says_how_to_turn_it_on()
    {
        var result = Decide(SshMode.Auto, environment: new System.Collections.Hashtable { ["PATH"] = "/usr/bin", [Key] = "  \n", ["SSH_PUBLIC_KEY"] = string.Empty });

        Assert.Equal(
            StepResult.Skipped("no key to let in: PUBLIC_KEY, SSH_PUBLIC_KEY and --ssh-keys-dir give none, and /root/.ssh/authorized_keys holds none; sshd not started "
                + "(give the pod a public key to log in over SSH; --ssh on starts sshd without one)"),
            result);
    }

    [Fact]
    public void Auto_with_only_a_malformed_key_starts_nothing_and_warns_about_the_key()
    {
        var result = Decide(SshMode.Auto, environment: new System.Collections.Hashtable { ["PATH"] = "/usr/bin", [Key] = "ssh-ed25519 AAAA" });

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.StartsWith("no key to let in:", result.Summary, StringComparison.Ordinal);
        Assert.EndsWith("; PUBLIC_KEY line 1: the key's data is not a ssh-ed25519 key; left out", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_the_user_added_by_hand_is_enough_for_auto()
    {
        var posix = new PathTablePosix().Directory("/root").Directory("/root/.ssh", mode: "700").File("/root/.ssh/authorized_keys", $"restrict {PublicKeysTests.Bob}\n");

        var result = Decide(SshMode.Auto, environment: new System.Collections.Hashtable { ["PATH"] = "/usr/bin" }, posix: posix);

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.StartsWith("would start /usr/sbin/sshd on port 2222 for root with 0 keys from the pod in /root/.ssh/authorized_keys", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void On_starts_sshd_without_a_key()
    {
        var result = Decide(SshMode.On, environment: new System.Collections.Hashtable { ["PATH"] = "/usr/bin" });

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.StartsWith("would start /usr/sbin/sshd on port 2222 for root with 0 keys from the pod", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Sshd_without_ssh_keygen_is_a_warning_when_there_is_a_key()
    {
        var result = Decide(SshMode.Auto, executables: [Sshd]);

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.Contains("no ssh-keygen to make its host keys", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_workspace_the_plan_is_an_ed25519_host_key_for_this_container_and_names_the_keys_and_the_port()
    {
        var result = Decide(SshMode.Auto, environment: new System.Collections.Hashtable { ["PATH"] = "/usr/bin", [Key] = $"{PublicKeysTests.Alice}\n{PublicKeysTests.Bob}", ["HF_TOKEN"] = "x" });

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.Equal($"would start /usr/sbin/sshd on port 2222 for root with 2 keys from the pod in /root/.ssh/authorized_keys; would make the ed25519 host key, temporary (no volume); 3 variables for sessions; log {_runtime}/sshd.log", result.Summary);
    }

    [Fact]
    public void An_rsa_host_key_and_a_listen_address_are_made_and_used_only_when_asked()
    {
        var result = Decide(SshMode.Auto, rsa: true, listen: "127.0.0.1");

        Assert.StartsWith("would start /usr/sbin/sshd on 127.0.0.1 port 2222 for root with 1 key from the pod in /root/.ssh/authorized_keys; would make the ed25519 and rsa host keys, temporary (no volume)", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void A_home_account_without_an_entry_in_passwd_is_a_warning_and_no_sshd()
    {
        var result = Decide(SshMode.Auto, posix: new PathTablePosix().Directory("/root", uid: 4242), account: 4242);

        Assert.Equal(
            StepResult.Problem("the home's account, uid 4242 (the test's), has no entry in /etc/passwd: sshd can log no one in to /root; sshd not started"),
            result);
    }

    [Fact]
    public void A_home_another_account_owns_gets_no_keys_and_no_sshd_and_the_fix_is_named()
    {
        var result = Decide(SshMode.Auto, posix: new PathTablePosix().Directory("/root", uid: 4242, gid: 4242));

        Assert.Equal(
            StepResult.Problem("/root belongs to uid 4242, not to the home's account, uid 0 (the test's): the pod's keys are not written into it and sshd is not started "
                + "(if the home is right, give it to its account: chown -R 0:0 /root; if the account is, name it: --user 4242)"),
            result);
    }

    [Fact]
    public void Without_a_home_account_nothing_is_written_and_no_sshd_starts_and_the_reason_is_given()
    {
        var accounts = new Accounts();
        var resolver = FakeFileSystem.Resolver(FakeFileSystem.With(Sshd, Keygen), Sshd, Keygen);
        var step = new SshStep(
            new PathTablePosix().Directory("/root"), new System.IO.Abstractions.TestingHelpers.MockFileSystem(), new FakeProcessRunner(new ProcessResult(0, string.Empty, string.Empty, false)), resolver, TestAccounts.NoProgramChecks,
            () => new System.Collections.Hashtable { ["PATH"] = "/usr/bin", [Key] = PublicKeysTests.Alice }, new SshPaths(_runtime, "/run/sshd"), () => true, accounts, new StrictModes(_ => null, _ => null, accounts),
            Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, TimeProvider.System);
        var options = new BootOptions { Workspace = "/workspace", Home = "/root", Ssh = SshMode.Auto };

        using var plan = step.Decide(null, new BootSettings(options, new StopRequest(), new AccountChoice(null, "no account known here")));

        Assert.Equal(StepResult.Problem("no account to let the pod's keys in as: no account known here; sshd not started"), plan.Preview);
        Assert.Empty(plan.Changes);
    }

    private sealed class Accounts : IAccounts
    {
        public Account? ByUid(uint uid) => uid == 0 ? new Account("root", 0, 0, "/root") : null;

        public Account? ByHome(string home) => home == "/root" ? ByUid(0) : null;

        public bool HoldsOnly(uint gid, uint uid, uint owner) => false;
    }
}

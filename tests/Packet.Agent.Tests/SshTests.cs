using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Gpu;
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
    private static SshdSettings Settings(bool rootHome = true, Dictionary<string, string>? environment = null) =>
        new(2222, ["/ws/.packet/ssh/ssh_host_ed25519_key"], rootHome ? "root" : "dev", "/ws/home/.ssh/authorized_keys", "/run/packet-agent/sshd.pid", environment ?? []);

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
        Assert.EndsWith("\nMatch User \"dev\"\n\tAuthorizedKeysFile .ssh/authorized_keys \"/ws/home/.ssh/authorized_keys\"\n", user, StringComparison.Ordinal);
        Assert.DoesNotContain("SetEnv", root, StringComparison.Ordinal);
    }

    [Fact]
    public void The_whole_config_is_exactly_the_approved_one()
    {
        var settings = new SshdSettings(2222, ["/ws/.packet/ssh/ssh_host_ed25519_key", "/ws/.packet/ssh/ssh_host_rsa_key"], "dev", "/ws/home/.ssh/authorized_keys", "/run/packet-agent/sshd.pid", new Dictionary<string, string> { ["A"] = "1" });

        Assert.Equal(
            """
            # Written by packet-agent at every boot; changes here are lost. See README, "SSH into the pod".
            Port 2222
            HostKey "/ws/.packet/ssh/ssh_host_ed25519_key"
            HostKey "/ws/.packet/ssh/ssh_host_rsa_key"
            AuthorizedKeysFile .ssh/authorized_keys
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin no
            UsePAM no
            StrictModes no
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
}

public sealed class SshStepDecisionTests
{
    private const string Sshd = "/usr/sbin/sshd";
    private const string Keygen = "/usr/bin/ssh-keygen";

    private static StepResult Decide(SshMode mode, uint user = 0, string[]? executables = null, System.Collections.Hashtable? environment = null, bool insideContainer = true)
    {
        executables ??= [Sshd, Keygen];
        var resolver = FakeFileSystem.Resolver(FakeFileSystem.With(executables), executables);
        var runner = new FakeProcessRunner(new ProcessResult(0, string.Empty, string.Empty, TimedOut: false));
        var step = new SshStep(new PathTablePosix(user), runner, resolver, () => environment ?? new System.Collections.Hashtable { ["PATH"] = "/usr/bin" }, new SshPaths("/run/packet-agent", "/run/sshd"), () => insideContainer, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var options = new BootOptions { Workspace = "/workspace", Home = "/root", Ssh = mode, SshPort = 2222 };
        using var plan = step.Decide(null, new BootSettings(options, new StopRequest()));
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
    public void Sshd_without_ssh_keygen_is_a_warning_even_in_auto()
    {
        var result = Decide(SshMode.Auto, executables: [Sshd]);

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.Contains("no ssh-keygen to make its host keys", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_workspace_the_plan_is_temporary_host_keys_and_names_the_keys_and_the_port()
    {
        var result = Decide(SshMode.Auto, environment: new System.Collections.Hashtable { ["PATH"] = "/usr/bin", ["PUBLIC_KEY"] = $"{PublicKeysTests.Alice}\n{PublicKeysTests.Bob}", ["HF_TOKEN"] = "x" });

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.Equal("would start /usr/sbin/sshd on port 2222 with 2 keys from the pod in /root/.ssh/authorized_keys; temporary host keys (no volume); 3 variables for sessions", result.Summary);
    }
}

using System.Globalization;
using System.Text;

namespace Packet.Agent.Ssh;

/// <summary>What sshd is started with: where it listens, its host keys, whose keys it takes, and the sessions' environment.</summary>
/// <param name="Port">The port sshd listens on.</param>
/// <param name="ListenAddress">The one address it listens on; null: every address.</param>
/// <param name="HostKeys">The host keys' private files.</param>
/// <param name="User">The account that owns the persisted home: the one account whose logins also read <paramref name="PersistedKeys"/>.</param>
/// <param name="PersistedKeys">The persisted home's authorized_keys, which the pod's keys are written to.</param>
/// <param name="PidFile">Where sshd writes its pid, for the next boot in this container and for status.</param>
/// <param name="SessionEnvironment">The variables every session gets.</param>
public sealed record SshdSettings(
    int Port,
    string? ListenAddress,
    IReadOnlyList<string> HostKeys,
    string User,
    string PersistedKeys,
    string PidFile,
    IReadOnlyDictionary<string, string> SessionEnvironment)
{
    public bool RootHome => User == "root";
}

/// <summary>
/// The sshd_config the agent writes for each boot (root's, 0600: it holds the pod's variables).
/// Keys only, never passwords. The pod's environment reaches every session through sshd's own
/// <c>SetEnv</c>: sshd hands the container's environment to no session, and a file read by
/// <c>.bashrc</c> would miss what matters most (<c>ssh pod cmd</c>, VS Code, rsync run shells that are
/// not interactive, for which Debian's .bashrc returns at its first line).
/// </summary>
public static class SshdConfig
{
    /// <summary>
    /// Names a shell, sshd or the login sets per session, and the pod's keys: never taken from the
    /// pod (docs/ssh.md).
    /// </summary>
    private static readonly HashSet<string> SessionOwned = new(StringComparer.Ordinal)
    {
        "HOME", "USER", "LOGNAME", "SHELL", "TERM", "PWD", "OLDPWD", "SHLVL", "MAIL", "_", "DISPLAY", "XAUTHORITY", "LINES", "COLUMNS", "PUBLIC_KEY",
    };

    /// <summary>
    /// What describes the process that started the agent, not the pod: systemd's per-service
    /// variables (sd_listen_fds(3), sd_notify(3), systemd.exec(5)), which would point a session at
    /// descriptors and sockets that are not its own.
    /// </summary>
    private static readonly HashSet<string> ProcessOwned = new(StringComparer.Ordinal)
    {
        "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "INVOCATION_ID", "JOURNAL_STREAM", "WATCHDOG_PID", "WATCHDOG_USEC",
    };

    /// <summary>Prefixes of the agent's own settings (PACKET_SSH, PACKET_WORKSPACE...) and tini's (TINI_SUBREAPER...): they configure PID 1's programs, not a session.</summary>
    private static readonly string[] AgentPrefixes = ["PACKET_", "TINI_"];

    public static string Render(SshdSettings settings)
    {
        var config = new StringBuilder();
        void Line(string text) => config.Append(text).Append('\n');

        Line("# Written by packet-agent at every boot; changes here are lost. See docs/ssh.md.");
        Line(string.Create(CultureInfo.InvariantCulture, $"Port {settings.Port}"));
        if (settings.ListenAddress is { } address)
        {
            Line($"ListenAddress {address}");
        }

        foreach (string key in settings.HostKeys)
        {
            Line($"HostKey {Quote(key)}");
        }

        Line("AuthorizedKeysFile .ssh/authorized_keys");
        Line("PubkeyAuthentication yes");
        Line("PasswordAuthentication no");
        Line("KbdInteractiveAuthentication no");
        Line(settings.RootHome ? "PermitRootLogin prohibit-password" : "PermitRootLogin no");
        Line("UsePAM no");

        // sshd's own check of the keys file and the folders above it stays on; the agent sets ~/.ssh
        // 0700 and authorized_keys 0600 and says when the volume or a folder above would fail it.
        Line("StrictModes yes");
        Line("PrintMotd no");
        Line("X11Forwarding no");
        Line("Subsystem sftp internal-sftp");
        Line($"PidFile {Quote(settings.PidFile)}");
        if (settings.SessionEnvironment.Count > 0)
        {
            // sshd takes only its first SetEnv line: every variable goes on this one.
            Line("SetEnv " + string.Join(' ', settings.SessionEnvironment.Select(v => Quote($"{v.Key}={v.Value}"))));
        }

        // The persisted home's keys count for its owner alone, also while the live home is not wired to it
        // (an absolute AuthorizedKeysFile outside a Match would let the pod's keys log in as any account).
        Line($"Match User {Quote(settings.User)}");
        Line($"\tAuthorizedKeysFile .ssh/authorized_keys {Quote(settings.PersistedKeys)}");

        return config.ToString();
    }

    /// <summary>
    /// The variables sessions get: COMMAND's, less the names sessions own (<c>SSH_*</c> and those in
    /// <see cref="SessionOwned"/>), less what describes the agent's own process (<c>PACKET_*</c>,
    /// <c>TINI_*</c>, systemd's per-service names), and less what sshd_config cannot hold (a newline
    /// or a NUL in the value, a name that is not a shell identifier), which are named in
    /// <paramref name="leftOut"/>. PATH is given twice: as PATH, for commands (<c>ssh pod cmd</c>),
    /// and as PACKET_POD_PATH, which the .bashrc block puts back after a login's /etc/profile has reset PATH.
    /// </summary>
    public static IReadOnlyDictionary<string, string> SessionEnvironment(IReadOnlyDictionary<string, string> variables, List<string> leftOut)
    {
        var kept = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in variables)
        {
            if (SessionOwned.Contains(name) || ProcessOwned.Contains(name) || name.StartsWith("SSH_", StringComparison.Ordinal)
                || AgentPrefixes.Any(prefix => name.StartsWith(prefix, StringComparison.Ordinal)))
            {
                continue;
            }

            if (!IsIdentifier(name) || value.AsSpan().IndexOfAny('\n', '\r', '\0') >= 0)
            {
                leftOut.Add(name);
                continue;
            }

            kept[name] = value;
        }

        if (kept.TryGetValue("PATH", out string? path))
        {
            kept[Profile.ManagedBlock.PodPathVariable] = path;
        }

        return kept;
    }

    /// <summary>
    /// The most variables SetEnv gives a session. sshd ends a session whose environment reaches
    /// 1,000 variables (OpenSSH session.c, <c>child_set_env</c>: "too many env vars"), and the login
    /// adds its own (USER, HOME, SHELL, MAIL, the SSH_* ones, TERM...) to the pod's: about 130
    /// Kubernetes Services in a namespace give a pod that many.
    /// </summary>
    public const int MaxSessionVariables = 900;

    /// <summary>What a session needs of the service links: the API server's address, which in-cluster clients (kubectl) read.</summary>
    private static readonly HashSet<string> ApiServer = new(StringComparer.Ordinal) { "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBERNETES_SERVICE_PORT_HTTPS" };

    /// <summary>What a login needs whatever the cap leaves out: where programs are, and the locale.</summary>
    private static bool IsPinned(string name) =>
        name is "PATH" or Profile.ManagedBlock.PodPathVariable or "LANG" or "LANGUAGE" || name.StartsWith("LC_", StringComparison.Ordinal);

    /// <summary>
    /// The session variables under <see cref="MaxSessionVariables"/>: the kubelet's service links
    /// (<see cref="ServiceLinks"/>, one set per Service in the namespace, which cluster DNS names
    /// reach as well) go first, the API server's kept; then, if still too many, the last names in
    /// order, PATH and the locale kept. <paramref name="note"/> names what was left out, or is null.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Capped(IReadOnlyDictionary<string, string> sessions, out string? note)
    {
        note = null;
        if (sessions.Count <= MaxSessionVariables)
        {
            return sessions;
        }

        var links = ServiceLinks(sessions);
        var kept = sessions.Where(v => !links.Contains(v.Key)).OrderBy(v => !IsPinned(v.Key)).ThenBy(v => v.Key, StringComparer.Ordinal).ToList();
        var cut = kept.Skip(MaxSessionVariables).Select(v => v.Key).ToList();
        var capped = new SortedDictionary<string, string>(kept.Take(MaxSessionVariables).ToDictionary(v => v.Key, v => v.Value), StringComparer.Ordinal);
        var said = new List<string>();
        if (links.Count > 0)
        {
            said.Add($"{links.Count.ToString(CultureInfo.InvariantCulture)} Kubernetes service-link variables (such as {string.Join(", ", links.Order(StringComparer.Ordinal).Take(3))}; the Services' DNS names reach the same)");
        }

        if (cut.Count > 0)
        {
            said.Add($"{cut.Count.ToString(CultureInfo.InvariantCulture)} more, the last in order ({string.Join(", ", cut.Take(5))}{(cut.Count > 5 ? ", ..." : string.Empty)})");
        }

        note = $"sessions get {capped.Count.ToString(CultureInfo.InvariantCulture)} of the pod's {sessions.Count.ToString(CultureInfo.InvariantCulture)} variables: sshd ends a session with 1,000; left out: {string.Join(" and ", said)}";
        return capped;
    }

    /// <summary>
    /// The variables the kubelet sets for the namespace's Services (enableServiceLinks), other than
    /// the API server's address: for each Service NAME it sets <c>NAME_SERVICE_HOST</c>, and with it
    /// <c>NAME_SERVICE_PORT</c>, <c>NAME_SERVICE_PORT_PORTNAME</c>, <c>NAME_PORT</c> and
    /// <c>NAME_PORT_NUMBER_PROTOCOL[_PROTO|_PORT|_ADDR]</c> (pkg/kubelet/envvars). A name counts only
    /// beside its Service's <c>NAME_SERVICE_HOST</c>: a pod's own <c>APP_PORT</c> is not a link.
    /// </summary>
    public static HashSet<string> ServiceLinks(IReadOnlyDictionary<string, string> variables)
    {
        const string Host = "_SERVICE_HOST";
        var services = variables.Keys.Where(name => name.Length > Host.Length && name.EndsWith(Host, StringComparison.Ordinal)).Select(name => name[..^Host.Length]).ToHashSet(StringComparer.Ordinal);
        return variables.Keys.Where(name => !ApiServer.Contains(name) && services.Any(service => IsLinkOf(name, service))).ToHashSet(StringComparer.Ordinal);
    }

    private static bool IsLinkOf(string name, string service)
    {
        if (!name.StartsWith(service + "_", StringComparison.Ordinal))
        {
            return false;
        }

        string rest = name[(service.Length + 1)..];
        if (rest is "SERVICE_HOST" or "SERVICE_PORT" or "PORT" || (rest.StartsWith("SERVICE_PORT_", StringComparison.Ordinal) && rest.Length > "SERVICE_PORT_".Length))
        {
            return true;
        }

        // PORT_6379_TCP, PORT_6379_TCP_ADDR ...
        string[] parts = rest.Split('_');
        return parts.Length is 3 or 4 && parts[0] == "PORT" && parts[1].Length > 0 && parts[1].All(char.IsAsciiDigit)
            && parts[2] is "TCP" or "UDP" or "SCTP" && (parts.Length == 3 || parts[3] is "PROTO" or "PORT" or "ADDR");
    }

    /// <summary>The variables that could not be written into sshd_config, named; null when there are none.</summary>
    public static string? LeftOutNote(IReadOnlyList<string> leftOut) =>
        leftOut.Count == 0 ? null : $"not given to sessions (a newline in the value, or not a name): {string.Join(", ", leftOut)}";

    /// <summary>
    /// One argument as sshd's parser reads it (misc.c, argv_split): inside double quotes only a
    /// backslash before a quote or a backslash escapes, and nothing else ends the argument, so no
    /// value can add a directive or end the line.
    /// </summary>
    public static string Quote(string argument) =>
        "\"" + argument.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    private static bool IsIdentifier(string name) =>
        name.Length > 0 && (char.IsAsciiLetter(name[0]) || name[0] == '_') && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
}

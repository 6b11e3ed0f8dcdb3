using System.Globalization;

namespace Packet.Agent.Cli;

/// <summary>The commands an option belongs to.</summary>
[Flags]
public enum CommandSet
{
    None = 0,
    Boot = 1,
    Gpu = 2,
    Status = 4,
    ResetHome = 8,
}

/// <summary>A value as given, and where: the flag's name or the environment variable's.</summary>
public readonly record struct Given(string Value, string Source);

/// <summary>
/// One option, declared once: its flag, environment variable, type, default and help. The parser
/// reads a value through it and <c>--help</c> prints it, so neither can tell a different story.
/// </summary>
public abstract class Option(string? flag, string? variable, string help, CommandSet commands)
{
    public string? Flag { get; } = flag;

    public string? Variable { get; } = variable;

    public string Help { get; } = help;

    public CommandSet Commands { get; } = commands;

    /// <summary>Where the parser files its value: the flag, else the variable.</summary>
    public string Key => Flag ?? Variable!;

    /// <summary>The placeholder after the flag in help; null for a switch, which takes no value.</summary>
    public abstract string? ValueName { get; }

    public bool IsSwitch => ValueName is null;

    /// <summary>The variable as help shows it (a switch's shows the value that turns it over).</summary>
    public virtual string? VariableInHelp => Variable;

    public abstract string DefaultInHelp { get; }

    protected static UsageException Invalid(Given given, string expected)
    {
        string where = given.Source.StartsWith("--", StringComparison.Ordinal) ? $"for {given.Source}" : $"in {given.Source}";
        return new UsageException($"invalid value '{given.Value}' {where}: expected {expected}");
    }
}

/// <summary>An option of type <typeparamref name="T"/>: its default when not given, its parse when given.</summary>
public abstract class Option<T>(string? flag, string? variable, string help, CommandSet commands, T defaultValue) : Option(flag, variable, help, commands)
{
    public T Default { get; } = defaultValue;

    public T Read(IReadOnlyDictionary<string, Given> values) => values.TryGetValue(Key, out var given) ? Parse(given) : Default;

    protected abstract T Parse(Given given);
}

/// <summary>An absolute path; trailing slashes dropped. A default of null is computed by the caller, as <paramref name="defaultInHelp"/> says.</summary>
public sealed class PathOption(string? flag, string variable, string? defaultValue, string help, CommandSet commands, string? defaultInHelp = null)
    : Option<string?>(flag, variable, help, commands, defaultValue)
{
    public override string ValueName => "PATH";

    public override string DefaultInHelp => defaultInHelp ?? Default ?? "none";

    /// <summary>An absolute path without trailing slashes; "/" (or "//") stays the root.</summary>
    public static string Normalized(string path) => path.TrimEnd('/') is { Length: > 0 } trimmed ? trimmed : "/";

    protected override string? Parse(Given given) =>
        given.Value.StartsWith('/') ? Normalized(given.Value) : throw Invalid(given, "an absolute path (starting with /)");
}

/// <summary>Any non-empty text.</summary>
public sealed class TextOption(string? flag, string? variable, string? valueName, string? defaultValue, string help, CommandSet commands, string? defaultInHelp = null)
    : Option<string?>(flag, variable, help, commands, defaultValue)
{
    public override string? ValueName => valueName ?? "VALUE";

    public override string DefaultInHelp => defaultInHelp ?? Default ?? "unset";

    protected override string Parse(Given given) => given.Value.Length > 0 ? given.Value : throw Invalid(given, "a non-empty value");
}

/// <summary>One of an enum's names, case-insensitive.</summary>
public sealed class ChoiceOption<T>(string flag, string variable, string valueName, T defaultValue, string help, CommandSet commands)
    : Option<T>(flag, variable, help, commands, defaultValue)
    where T : struct, Enum
{
    public override string ValueName => valueName;

    public override string DefaultInHelp => Default.ToString().ToLowerInvariant();

    protected override T Parse(Given given)
    {
        foreach (var choice in Enum.GetValues<T>())
        {
            if (string.Equals(choice.ToString(), given.Value, StringComparison.OrdinalIgnoreCase))
            {
                return choice;
            }
        }

        var names = Enum.GetNames<T>().Select(n => n.ToLowerInvariant()).ToArray();
        throw Invalid(given, $"{string.Join(", ", names[..^1])} or {names[^1]}");
    }
}

/// <summary>A time limit in seconds, above 0 and at most a week.</summary>
public sealed class SecondsOption(string flag, string variable, double defaultSeconds, string help, CommandSet commands)
    : Option<TimeSpan>(flag, variable, help, commands, TimeSpan.FromSeconds(defaultSeconds))
{
    private const double MaxSeconds = 7 * 24 * 3600;

    public override string ValueName => "SECONDS";

    public override string DefaultInHelp => Default.TotalSeconds.ToString(CultureInfo.InvariantCulture);

    protected override TimeSpan Parse(Given given)
    {
        if (!double.TryParse(given.Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double seconds) || seconds <= 0 || seconds > MaxSeconds)
        {
            throw Invalid(given, $"a number of seconds greater than 0 and at most {MaxSeconds:0}");
        }

        return TimeSpan.FromSeconds(seconds);
    }
}

/// <summary>An IPv4 or IPv6 address, written as sshd's ListenAddress takes it; no default means every address.</summary>
public sealed class AddressOption(string flag, string variable, string help, CommandSet commands, string defaultInHelp)
    : Option<string?>(flag, variable, help, commands, null)
{
    public override string ValueName => "ADDRESS";

    public override string DefaultInHelp => defaultInHelp;

    protected override string Parse(Given given) =>
        IsAddress(given.Value, out var address) ? address.ToString() : throw Invalid(given, "an IPv4 address in dotted quads or an IPv6 address, such as 127.0.0.1 or ::1");

    // IPAddress.TryParse also takes "127.1" and "1" (inet_aton's shorthands) and zone ids ("fe80::1%eth0"), which sshd's parser does not.
    private static bool IsAddress(string text, out System.Net.IPAddress address) =>
        System.Net.IPAddress.TryParse(text, out address!)
        && (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? !text.Contains('%', StringComparison.Ordinal) : text.Count(c => c == '.') == 3);
}

/// <summary>A numeric account: <c>UID</c>, or <c>UID:GID</c> (without a GID, the account's group in /etc/passwd, else one numbered as the uid).</summary>
public sealed class AccountOption(string flag, string variable, string help, CommandSet commands, string defaultInHelp)
    : Option<UserIds?>(flag, variable, help, commands, null)
{
    public override string ValueName => "UID[:GID]";

    public override string DefaultInHelp => defaultInHelp;

    protected override UserIds? Parse(Given given)
    {
        string[] parts = given.Value.Split(':');
        return parts.Length <= 2
            && uint.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out uint uid)
            && (parts.Length == 1 || uint.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out _))
                ? new UserIds(uid, parts.Length == 2 ? uint.Parse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture) : null)
                : throw Invalid(given, "a numeric uid, or uid:gid, such as 1000 or 1000:100");
    }
}

/// <summary>A uid, and a gid when one was given.</summary>
public readonly record struct UserIds(uint Uid, uint? Gid);

/// <summary>A TCP port, 1 to 65535.</summary>
public sealed class PortOption(string flag, string variable, int defaultValue, string help, CommandSet commands)
    : Option<int>(flag, variable, help, commands, defaultValue)
{
    public override string ValueName => "PORT";

    public override string DefaultInHelp => Default.ToString(CultureInfo.InvariantCulture);

    protected override int Parse(Given given) =>
        int.TryParse(given.Value, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is >= 1 and <= 65535
            ? port
            : throw Invalid(given, "a port number from 1 to 65535");
}

/// <summary>
/// A setting that is on or off. The flag turns it over from its default (<c>--strict</c> on,
/// <c>--no-upgrade</c> off); the variable, if any, states the setting itself: 1/true/yes/on or
/// 0/false/no/off (<c>PACKET_STRICT=1</c>, <c>PACKET_UPGRADE=off</c>).
/// </summary>
public sealed class SwitchOption(string flag, string? variable, bool defaultValue, string help, CommandSet commands, string? defaultInHelp = null)
    : Option<bool>(flag, variable, help, commands, defaultValue)
{
    public override string? ValueName => null;

    public override string? VariableInHelp => Variable is null ? null : $"{Variable}={(Default ? "off" : "1")}";

    public override string DefaultInHelp => defaultInHelp ?? (Default ? "on" : "off");

    protected override bool Parse(Given given)
    {
        if (given.Source == Flag)
        {
            return !Default;
        }

        return given.Value.ToLowerInvariant() switch
        {
            "1" or "true" or "yes" or "on" => true,
            "0" or "false" or "no" or "off" => false,
            _ => throw Invalid(given, Default ? "on or off (1/0, true/false, yes/no)" : "1 or 0 (true/false, yes/no, on/off)"),
        };
    }
}

using System.Collections;
using System.IO.Abstractions;
using System.Text;

namespace Packet.Agent.Ssh;

/// <summary>
/// The environment the agent runs with: <see cref="Variables"/>; <see cref="RecordedBy"/> names the
/// pod's record when the variables came from it, <see cref="NotUsed"/> says why a record was refused.
/// </summary>
public sealed record PodEnvironmentChoice(IDictionary Variables, string? RecordedBy = null, string? NotUsed = null);

/// <summary>
/// The pod's environment, for an agent run by hand from inside one of the pod's SSH sessions. Such a
/// session has the pod's variables less the agent's own settings (<c>PACKET_*</c>) and keys
/// (<c>PUBLIC_KEY</c>, <c>SSH_PUBLIC_KEY</c>), and a PATH its login rewrote: run with it, a recovery
/// boot would move sshd to the default port or drop the pod's keys from authorized_keys. So the boot
/// that starts sshd records the environment it ran with (root only, in the container's runtime
/// directory), and a later run from a session of that sshd reads its settings and the pod's
/// variables from the record; <c>PACKET_*</c> settings the user typed in the session still win.
/// The record decides a session's PATH and LD_PRELOAD, so it is read only from a runtime directory
/// that is the agent's user's alone (<c>RuntimeDirectory</c>): another account could make
/// <c>/tmp/packet-agent-UID</c> first.
/// </summary>
public static class PodEnvironment
{
    public const string RecordFile = "pod-environment";

    /// <summary>Set by sshd in every session: the process runs inside an SSH session.</summary>
    private const string SessionMarker = "SSH_CONNECTION";

    /// <summary>The variable the .bashrc block restores PATH from: the agent's sshd gives it to sessions, a user does not set it.</summary>
    private const string PodPath = "PACKET_POD_PATH";

    private const int MaxRecordBytes = 1 << 20;

    /// <summary>Variables as <c>/proc/PID/environ</c> holds them: NAME=VALUE, each ended by a NUL.</summary>
    public static byte[] Serialize(IDictionary environment)
    {
        var text = new StringBuilder();
        foreach (DictionaryEntry variable in environment)
        {
            text.Append((string)variable.Key).Append('=').Append((string?)variable.Value).Append('\0');
        }

        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>
    /// The environment the agent runs with: <paramref name="process"/> itself, or, inside an SSH
    /// session of the sshd the agent started in this container, the pod's recorded environment with
    /// the session's own <c>PACKET_*</c> settings over it. <paramref name="runtimeRefusal"/> says why
    /// the runtime directory may not be used (null: it may), asked only inside a session.
    /// </summary>
    public static PodEnvironmentChoice Resolve(IFileSystem files, string runtime, Func<string?> runtimeRefusal, IDictionary process)
    {
        if (process[SessionMarker] is not string { Length: > 0 } || !files.Directory.Exists(runtime))
        {
            return new(process);
        }

        if (runtimeRefusal() is { } refused)
        {
            return new(process, NotUsed: $"inside an SSH session, but the pod's recorded environment is not used: {refused}");
        }

        if (AgentSshd.Find(files, runtime) is not { } sshd)
        {
            return new(process);
        }

        string record = Path.Join(runtime, RecordFile);
        Dictionary<string, string> pod;
        try
        {
            var info = files.FileInfo.New(record);
            if (!info.Exists || info.Length > MaxRecordBytes)
            {
                return new(process);
            }

            pod = Parse(files.File.ReadAllBytes(record));
        }
        catch (IOException)
        {
            return new(process);
        }
        catch (UnauthorizedAccessException)
        {
            return new(process); // not root: the record is root's, and so is the pod's sshd
        }

        foreach (DictionaryEntry variable in process)
        {
            if (variable.Key is string name && name.StartsWith("PACKET_", StringComparison.Ordinal) && name != PodPath)
            {
                pod[name] = (string?)variable.Value ?? string.Empty;
            }
        }

        return new(new Hashtable(pod, StringComparer.Ordinal), $"{record} (the environment the boot that started sshd pid {sshd.Pid} ran with)");
    }

    private static Dictionary<string, string> Parse(byte[] bytes)
    {
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string entry in Encoding.UTF8.GetString(bytes).Split('\0', StringSplitOptions.RemoveEmptyEntries))
        {
            int equals = entry.IndexOf('=', StringComparison.Ordinal);
            if (equals > 0)
            {
                variables[entry[..equals]] = entry[(equals + 1)..];
            }
        }

        return variables;
    }
}

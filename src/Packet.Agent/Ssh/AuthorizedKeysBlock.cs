using System.Text;

namespace Packet.Agent.Ssh;

/// <summary>
/// The pod's keys in <c>~/.ssh/authorized_keys</c> as one managed block, rewritten from the pod's
/// keys at every boot: a key removed from the pod spec leaves at the next boot, a key the user added
/// by hand (anywhere outside the block) is never touched, and a key listed there already is not
/// listed again. Pure text in, text out.
/// </summary>
public static class AuthorizedKeysBlock
{
    public const string Start = "# >>> packet-agent keys >>>";
    public const string End = "# <<< packet-agent keys <<<";
    private const string Note = "# From the pod (PUBLIC_KEY, SSH_PUBLIC_KEY, --ssh-keys-dir), rewritten at every boot; add your own keys outside this block.";

    /// <summary>
    /// <paramref name="text"/> with exactly one block holding <paramref name="keys"/> (none: no
    /// block). Returns the same instance when nothing changes. <paramref name="listed"/> is how many
    /// keys the block holds.
    /// </summary>
    public static string Apply(string text, IReadOnlyList<PublicKey> keys, out int listed)
    {
        var (outside, _) = Split(text);
        var byHand = new HashSet<string>(StringComparer.Ordinal);
        foreach (string line in outside)
        {
            if (PublicKeys.Parse(line.Trim(), out var key, out _))
            {
                byHand.Add(key.Identity);
            }
        }

        var block = keys.Where(k => !byHand.Contains(k.Identity)).Select(k => k.Line).ToList();
        listed = block.Count;
        var result = new List<string>(outside);
        if (block.Count > 0)
        {
            result.Add(Start);
            result.Add(Note);
            result.AddRange(block);
            result.Add(End);
        }

        string updated = result.Count == 0 ? string.Empty : string.Join('\n', result) + "\n";
        return updated == text ? text : updated;
    }

    /// <summary>
    /// How many keys the file lists outside the block: the keys a user added by hand, options
    /// (<c>from="..."</c>, <c>command="..."</c>) and all. They keep their owner's access when the pod gives none.
    /// </summary>
    public static int KeysOutside(string text) => Split(text).Outside.Count(PublicKeys.IsKeyLine);

    /// <summary>
    /// The file's bytes as text where each byte is one character (ISO-8859-1): a line the block does
    /// not own goes back byte for byte (<see cref="ToBytes"/>), whatever its encoding.
    /// </summary>
    public static string FromBytes(byte[] file) => Encoding.Latin1.GetString(file);

    public static byte[] ToBytes(string text) => Encoding.Latin1.GetBytes(text);

    /// <summary>A pod's key as it goes into <see cref="FromBytes"/> text: its comment as its UTF-8 bytes.</summary>
    public static PublicKey AsBytes(PublicKey key) => key with { Comment = Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(key.Comment)) };

    /// <summary>How many keys the block lists: those an earlier boot took from the pod.</summary>
    public static int KeysInBlock(string text) => Split(text).Block.Count(PublicKeys.IsKeyLine);

    /// <summary>The lines outside the block, and those inside it.</summary>
    private static (List<string> Outside, List<string> Block) Split(string text)
    {
        var lines = text.Length == 0 ? [] : text.TrimEnd('\n').Split('\n').ToList();
        var outside = new List<string>();
        var block = new List<string>();
        List<string>? inBlock = null;
        foreach (string line in lines)
        {
            if (line.TrimEnd() == Start)
            {
                inBlock = [];
            }
            else if (line.TrimEnd() == End && inBlock is not null)
            {
                block.AddRange(inBlock);
                inBlock = null;
            }
            else if (inBlock is not null)
            {
                inBlock.Add(line);
            }
            else
            {
                outside.Add(line);
            }
        }

        // A block whose end line is gone (an editor cut it): what follows its start is kept as the user's.
        outside.AddRange(inBlock ?? []);
        return (outside, block);
    }
}

using System.Text;
using MoeSharp.Collectives;

namespace MoeSharp.Verification;

/// <summary>Gathers one short message per rank (e.g. a mismatch) so rank 0 can print the first one.</summary>
public static class RankMessages
{
    /// <summary>Bytes of UTF-8 each rank may contribute; longer messages are cut.</summary>
    private const int MessageBytes = 512;

    /// <summary>Collective: the first non-null message in rank order, prefixed with its rank; null if none.</summary>
    public static string? FirstInRankOrder(IProcessGroup world, string? message)
    {
        var mine = new byte[MessageBytes + 1];
        if (message is not null)
        {
            mine[0] = 1;
            byte[] utf8 = Encoding.UTF8.GetBytes(message);
            utf8.AsSpan(0, Math.Min(utf8.Length, MessageBytes)).CopyTo(mine.AsSpan(1));
        }
        var all = new byte[(MessageBytes + 1) * world.Size];
        world.AllGather<byte>(mine, all);
        for (int r = 0; r < world.Size; r++)
        {
            ReadOnlySpan<byte> entry = all.AsSpan(r * (MessageBytes + 1), MessageBytes + 1);
            if (entry[0] == 0)
                continue;
            ReadOnlySpan<byte> text = entry.Slice(1);
            int end = text.IndexOf((byte)0);
            return $"rank {r}: {Encoding.UTF8.GetString(end < 0 ? text : text.Slice(0, end))}";
        }
        return null;
    }
}

using MoeSharp.Dispatch;

namespace MoeSharp.Tests.Dispatch;

/// <summary>A shard whose start is not yet known says so explicitly, instead of a sentinel start of -1.</summary>
public class ShardClaimTests
{
    [Fact]
    public void KnownShard_CarriesItsRowsAndPads()
    {
        ShardClaim claim = ShardClaim.Known(new SequenceShard(TotalTokens: 10, Start: 8, RealRows: 2, PadRows: 1));
        Assert.NotNull(claim.Shard);
        Assert.Equal(2, claim.RealRows);
        Assert.Equal(1, claim.PadRows);
        Assert.Equal(3, claim.Rows);
    }

    [Fact]
    public void StartUnknown_HasRowsButNoShard()
    {
        ShardClaim claim = ShardClaim.StartUnknown(7);
        Assert.Null(claim.Shard);
        Assert.Equal(7, claim.RealRows);
        Assert.Equal(0, claim.PadRows);
        Assert.Equal(7, claim.Rows);
    }
}

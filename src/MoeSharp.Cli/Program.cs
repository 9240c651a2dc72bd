// The `moe` command line; commands are added as the library grows.
return 0;

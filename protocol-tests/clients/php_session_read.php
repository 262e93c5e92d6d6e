<?php
// Reads, in a process of its own, the PHP session that php_session_write.php
// wrote, through the session handler configured with -d flags; run by
// php_clients.php:
//
//   php -d session.save_handler=... -d session.save_path=... \
//       php_session_read.php SESSION_ID PAYLOAD update|destroy
//
// Checks the session holds PAYLOAD, then either counts the read in it
// (`update`: reads becomes 1, written back) or destroys it (`destroy`).
// Prints `read SESSION_ID` and exits 0 when all of that succeeded.

if ($argc != 4 || !in_array($argv[3], ['update', 'destroy'], true)) {
    fwrite(STDERR, "usage: php_session_read.php SESSION_ID PAYLOAD update|destroy\n");
    exit(2);
}
ini_set('session.use_cookies', '0');
ini_set('session.use_strict_mode', '0');
session_id($argv[1]);
if (!session_start()) {
    fwrite(STDERR, "session_start failed\n");
    exit(1);
}
$want = ['payload' => $argv[2], 'binary' => "\0\r\n\xff", 'reads' => $argv[3] === 'update' ? 0 : 1];
if ($_SESSION !== $want) {
    fwrite(STDERR, 'session data: got ' . json_encode($_SESSION) . ', want ' . json_encode(['payload' => $argv[2], 'reads' => $want['reads']]) . "\n");
    exit(1);
}
if ($argv[3] === 'update') {
    $_SESSION['reads'] = 1;
    $ok = session_write_close();
} else {
    $ok = session_destroy();
}
if (!$ok) {
    fwrite(STDERR, "session_{$argv[3]} failed\n");
    exit(1);
}
echo "read {$argv[1]}\n";
